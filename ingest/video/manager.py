"""CameraManager: attaches, updates and detaches cameras at runtime and watches their health.

This is the one object the runtime holds for video. Everything per camera runs in that camera's
own threads, so a camera that hangs, sends garbage or disappears never delays another; the only
shared thread is a light watchdog that turns silence into stalled/offline events and samples fps.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ingest.config import CameraConfig, IngestConfig
from ingest.frame import Frame
from ingest.video.errors import (
    CameraExistsError,
    InvalidSourceError,
    SourceError,
    UnknownCameraError,
)
from ingest.video.health import CameraStatus, HealthEvent
from ingest.video.probe import ProbeResult, probe
from ingest.video.registry import source_factory
from ingest.video.resolve import resolve_source
from ingest.video.source import SourceContext
from ingest.video.urls import redact_url, url_scheme
from ingest.video.whip import WhipSource
from ingest.video.worker import CameraWorker

log = logging.getLogger(__name__)

WATCHDOG_PERIOD_S = 0.25


class CameraManager:
    """Runs every camera's ingest; ``sink(frame)`` receives analysis frames from the cameras' delivery threads.

    ``sink`` is called concurrently for different cameras (one thread each) and must return quickly;
    while it is busy with one camera's frame, newer frames of that camera replace each other and
    are counted as skipped. ``on_health`` is called from decoder and watchdog threads.
    """

    def __init__(
        self,
        ingest: IngestConfig,
        base_dir: Path,
        sink: Callable[[Frame], None],
        on_health: Callable[[HealthEvent], None] | None = None,
    ):
        self.ingest = ingest
        self.base_dir = Path(base_dir)
        self.footage_dir = (self.base_dir / ingest.footage_dir).resolve()
        self._sink = sink
        self._on_health = on_health
        self._lock = threading.RLock()
        self._workers: dict[str, CameraWorker] = {}
        self._inactive: dict[str, CameraStatus] = {}  # disabled cameras and cameras that could not be built
        self._configs: dict[str, CameraConfig] = {}
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    # ---- public API ------------------------------------------------------------------------------------------
    def start(self, cameras: Iterable[CameraConfig]) -> None:
        """Attach the configured cameras; one that cannot be attached is reported (status + error event), not raised."""
        for camera in cameras:
            try:
                self.add(camera)
            except CameraExistsError as exc:  # a duplicate id: keep the first, report the second
                self._emit(HealthEvent(camera.id, "error", exc.reason, time.time()))
                log.warning("camera %s not started: %s", camera.id, exc.reason)
            except SourceError as exc:
                self._park(camera, "error", exc.reason)
                self._emit(HealthEvent(camera.id, "error", exc.reason, time.time()))
                log.warning("camera %s not started: %s", camera.id, exc.reason)

    def add(self, camera: CameraConfig) -> None:
        """Attach a camera now; its first frames follow within seconds. Raises SourceError subclasses."""
        with self._lock:
            if camera.id in self._workers or camera.id in self._inactive:
                raise CameraExistsError(f"camera {camera.id} is already attached")
            if not camera.enabled:
                self._park(camera, "offline", "disabled")
                return
            worker = self._build(camera)
            self._workers[camera.id] = worker
            self._configs[camera.id] = camera
            worker.start()
            self._ensure_watchdog()
        log.info("camera %s attached: %s (%s)", camera.id, redact_url(worker.url), worker.kind)

    def update(self, camera: CameraConfig) -> None:
        """Apply a changed camera config: in place when only analysis/health changed, else reconnect."""
        with self._lock:
            old = self._configs.get(camera.id)
            worker = self._workers.get(camera.id)
            if old is None and camera.id not in self._inactive:
                self.add(camera)
                return
            same_stream = (
                worker is not None and old is not None and camera.enabled
                and old.source == camera.source
                and old.analysis.keyframes_only == camera.analysis.keyframes_only
            )
            if same_stream:
                assert worker is not None
                worker.reconfigure(camera)
                self._configs[camera.id] = camera
                return
            if camera.enabled:
                new_worker = self._build(camera)  # fails before the old camera is touched
            self._detach(camera.id)
            if not camera.enabled:
                self._park(camera, "offline", "disabled")
                return
            self._workers[camera.id] = new_worker
            self._configs[camera.id] = camera
            new_worker.start()
            self._ensure_watchdog()

    def remove(self, camera_id: str) -> None:
        """Detach a camera and stop its threads. Raises UnknownCameraError."""
        with self._lock:
            if camera_id not in self._workers and camera_id not in self._inactive:
                raise UnknownCameraError(f"camera {camera_id} is not attached")
            self._detach(camera_id)

    def status(self) -> dict[str, CameraStatus]:
        """Health and rates of every attached camera, keyed by camera id."""
        with self._lock:
            workers = dict(self._workers)
            result = dict(self._inactive)
        result.update({cid: w.status() for cid, w in workers.items()})
        return result

    def latest(self, camera_id: str) -> Frame | None:
        """The newest decoded picture of the analysed stream at full resolution (snapshots, MJPEG preview)."""
        worker = self._workers.get(camera_id)
        return worker.latest() if worker is not None else None

    def cameras(self) -> dict[str, CameraConfig]:
        with self._lock:
            return dict(self._configs)

    def probe(self, url: str, timeout_s: float = 5.0) -> ProbeResult:
        """``probe`` with this deployment's footage folder and private-source policy."""
        return probe(url, allow_private=self.ingest.source_policy(), timeout_s=timeout_s,
                     base_dir=self.base_dir, footage_dir=self.footage_dir)

    def whip_source(self, camera_id: str) -> WhipSource:
        """The WHIP receiver of a ``whip:`` camera (for WhipIngest)."""
        worker = self._workers.get(camera_id)
        if worker is None:
            raise UnknownCameraError(f"camera {camera_id} is not attached")
        if not isinstance(worker.source, WhipSource):
            raise InvalidSourceError(f"camera {camera_id} is not a whip: camera")
        return worker.source

    def stop(self) -> None:
        """Stop every camera and the watchdog."""
        self._stop.set()
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
            self._configs.clear()
            self._inactive.clear()
        for worker in workers:
            worker.ctx.stop.set()  # signal all first so they wind down in parallel
        for worker in workers:
            worker.stop(timeout_s=2.0)
        if self._watchdog is not None:
            self._watchdog.join(2.0)

    # ---- internals -------------------------------------------------------------------------------------------
    def _build(self, camera: CameraConfig) -> CameraWorker:
        allow = self.ingest.source_policy()
        resolved = resolve_source(camera.source, base_dir=self.base_dir, footage_dir=self.footage_dir,
                                  allow_private=allow)
        ctx = SourceContext(
            camera_id=camera.id, source=camera.source, analysis=camera.analysis, allow_private=allow,
            base_dir=self.base_dir, footage_dir=self.footage_dir,
        )
        factory = source_factory(url_scheme(resolved.url))
        try:
            source = factory(resolved.url, ctx)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's constructor bug becomes a readable refusal
            raise InvalidSourceError(f"source type for {url_scheme(resolved.url)!r} refused the URL: {exc}") from None
        return CameraWorker(camera, resolved.url, source, ctx, self._sink, self._emit, note=resolved.note)

    def _detach(self, camera_id: str) -> None:
        worker = self._workers.pop(camera_id, None)
        self._configs.pop(camera_id, None)
        self._inactive.pop(camera_id, None)
        if worker is not None:
            worker.stop()

    def _park(self, camera: CameraConfig, state: str, reason: str) -> None:
        with self._lock:
            self._inactive[camera.id] = CameraStatus(
                camera_id=camera.id, state=state, reason=reason, source=redact_url(camera.source.url)  # type: ignore[arg-type]
            )

    def _emit(self, event: HealthEvent) -> None:
        if self._on_health is None:
            return
        try:
            self._on_health(event)
        except Exception:  # noqa: BLE001
            log.exception("health listener failed for %s", event.camera_id)

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or not self._watchdog.is_alive():
            self._stop.clear()
            self._watchdog = threading.Thread(target=self._watch, name="gw-camera-watchdog", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        while not self._stop.wait(WATCHDOG_PERIOD_S):
            with self._lock:
                workers = list(self._workers.values())
            for worker in workers:
                try:
                    worker.tick()
                except Exception:  # noqa: BLE001
                    log.exception("watchdog failed for camera %s", worker.camera.id)
