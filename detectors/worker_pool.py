"""``WorkerPoolVideo``: the video path over N worker processes and one detector process per host.

Why: in one Python process the video path's per-frame Python work (delivery, motion, tracking, rules, evidence)
shares one interpreter with the model, and that, not decoding or the model, limited a 2-core box to 16 cameras.
Here each worker process owns a share of the host's cameras and runs the single-process path for them
(``detectors.video_worker``); one detector process batches the crops of every camera of the host
(``detectors.detector_process``). Pictures cross processes only through shared-memory rings
(``ingest.video.shm``): one frame ring and one crop ring per camera, created and unlinked by this (parent)
object so that a SIGKILL'd worker leaks nothing and its replacement attaches to the same rings.

Faults: a worker that dies (a decoder abort on a corrupt stream, the OOM killer, kill -9) takes only its own
cameras down; the monitor thread marks them offline with the reason and restarts the worker with back-off
(1 s doubling to 30 s, reset after a minute of uptime). A dead detector process is restarted the same way;
meanwhile workers keep decoding and running motion and rules, answered "no detection".

This object implements ``detectors.engine.VideoEngine``; the video role drives it exactly like the in-process
engine. Construct it with the deployment (or ``VideoParts``), the worker count and a picklable factory that
builds the anomaly publisher inside each worker (e.g. ``alerts.publishing.OutboxFactory``).
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable

from ingest.anomaly import FenceStamp
from detectors.config import DetectionConfig
from detectors.detector_process import DetectorSpec, ModelInfo, crop_size, run_detector
from detectors.engine import OverlayBox
from detectors.video_worker import CameraRings, WorkerSpec, run_worker
from ingest.config import IngestConfig
from ingest.frame import Frame
from ingest.video.shm import Ring, engine_prefix, remove_leftovers, segments
from ingest.backoff import Backoff

log = logging.getLogger(__name__)

CROP_SLOTS = 8  # crops of one camera in flight at most (a pass is ≤ max_regions + 1 crops, one pass at a time)
FRAME_SLOTS = 3
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0
DETECTOR_READY_S = 180.0


@dataclass(frozen=True)
class VideoParts:
    """What the engine needs of a deployment (a ``gateway.config.Deployment`` gives all four)."""

    ingest: IngestConfig
    detection: DetectionConfig
    base_dir: Path
    evidence_dir: Any  # an ingest.blobs.BlobStore (picklable), or a folder

    @classmethod
    def of(cls, deployment_or_parts: Any) -> "VideoParts":
        if isinstance(deployment_or_parts, VideoParts):
            return deployment_or_parts
        dep = deployment_or_parts
        return cls(dep.ingest, dep.detection, Path(dep.base_dir), dep.evidence_store())


@dataclass
class _Child:
    """One child process slot (a worker or the detector) across its restarts."""

    name: str
    proc: Any = None
    conn: Connection | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: Backoff = field(default_factory=lambda: Backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S))  # short-lived runs
    restart_at: float | None = None
    last_exit: int | None = None
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    overlays: dict[str, list[tuple]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()


class WorkerPoolVideo:
    """N video worker processes + one detector process; see the module doc."""

    def __init__(self, deployment_or_parts: Any, workers: int | None = None,
                 publish_factory: Callable[[], Any] | None = None, *, start_method: str = "spawn",
                 log_level: int | None = None):
        if publish_factory is None:
            raise ValueError("publish_factory is required: it builds the anomaly publisher inside each worker")
        if start_method not in ("spawn", "forkserver"):
            raise ValueError("start_method must be spawn or forkserver (torch/onnxruntime and fork do not mix)")
        self.parts = VideoParts.of(deployment_or_parts)
        self.n_workers = max(1, int(workers or os.cpu_count() or 1))
        self.publish_factory = publish_factory
        self._ctx = mp.get_context(start_method)
        self._log_level = log_level if log_level is not None else logging.getLogger().getEffectiveLevel()
        self.prefix = engine_prefix()
        self._authkey = secrets.token_bytes(16)
        self._sockdir = tempfile.mkdtemp(prefix="gw-detector-")
        self._address = os.path.join(self._sockdir, "detector.sock")
        self._lock = threading.RLock()
        self._cameras: dict[str, Any] = {}  # camera id -> config
        self._owner: dict[str, int] = {}  # camera id -> worker index
        self._fences: dict[str, FenceStamp] = {}  # camera id -> the pool lease it is analysed under (pooled only)
        self._rings: dict[str, tuple[Ring, Ring]] = {}  # camera id -> (frames, crops), created here
        self._ring_no = 0
        self._workers = [_Child(f"video-worker-{i}") for i in range(self.n_workers)]
        self._detector = _Child("detector")
        self._models: dict[str, ModelInfo] = {}
        self._model_status = "detector process not started"
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._started = False

    # -- VideoEngine: lifecycle ------------------------------------------------------------------------------------
    @property
    def model_status(self) -> str:
        info = self._models.get("objects")
        if info is None:
            return f"motion-only: {self._model_status}"
        return info.status if info.loaded else f"motion-only: {info.status}"

    def start(self, cameras: Iterable[Any]) -> None:
        """Start the detector (waits for its model to load), then the workers with their share of ``cameras``."""
        if self._started:
            return
        removed = remove_leftovers()
        if removed:
            log.info("removed %d shared-memory segments left by a dead engine", len(removed))
        self._stop.clear()
        os.makedirs(self._sockdir, exist_ok=True)  # a second start after stop()
        self._start_detector(wait_ready=True)
        with self._lock:
            for camera in cameras:
                if camera.id in self._cameras:
                    log.warning("camera %s listed twice; keeping the first", camera.id)
                    continue
                self._place(camera)
            for i in range(self.n_workers):
                self._start_worker(i)
        self._started = True
        self._monitor = threading.Thread(target=self._watch, name="gw-video-pool", daemon=True)
        self._monitor.start()

    def stop(self) -> None:
        """Stop workers and detector in order (kill what does not stop), then unlink every segment."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(5.0)
            self._monitor = None
        children = [*self._workers, self._detector]
        for child in children:
            self._tell(child, ("stop",))
        for child in children:
            self._reap(child, timeout=10.0)
        with self._lock:
            rings, self._rings = list(self._rings.values()), {}
            self._cameras.clear()
            self._owner.clear()
            self._fences.clear()
        for frames, crops in rings:
            frames.close()
            crops.close()
        for name in segments(self.prefix):  # whatever a crash in between left behind
            try:
                os.unlink(f"/dev/shm/{name}")
            except OSError:
                pass
        try:
            os.unlink(self._address)
        except OSError:
            pass
        try:
            os.rmdir(self._sockdir)
        except OSError:
            pass
        self._started = False

    # -- VideoEngine: cameras --------------------------------------------------------------------------------------
    def add_camera(self, camera: Any) -> None:
        """Give the camera to the worker with the fewest cameras. Raises ValueError for a duplicate id."""
        with self._lock:
            if camera.id in self._cameras:
                raise ValueError(f"camera {camera.id} is already attached")
            index = self._place(camera)
            if self._started:
                self._tell(self._workers[index], ("add", camera, self._ring_names(camera.id), self._fences.get(camera.id)))

    def set_fence(self, camera_id: str, stamp: FenceStamp | None) -> None:
        """The pool lease a camera is analysed under (set before ``add_camera``): its worker stamps every anomaly
        of the camera with it, so intake can fence out a superseded owner (``alerts.fencing``)."""
        with self._lock:
            if stamp is None:
                self._fences.pop(camera_id, None)
            else:
                self._fences[camera_id] = stamp
            index = self._owner.get(camera_id)
            if index is not None and self._started:
                self._tell(self._workers[index], ("fence", camera_id, stamp))

    def update_camera(self, camera: Any) -> None:
        with self._lock:
            if camera.id not in self._cameras:
                self.add_camera(camera)
                return
            self._cameras[camera.id] = camera
            self._tell(self._workers[self._owner[camera.id]], ("update", camera))

    def remove_camera(self, camera_id: str) -> None:
        """Detach a camera and unlink its rings. Raises KeyError for an unknown id."""
        with self._lock:
            if camera_id not in self._cameras:
                raise KeyError(f"camera {camera_id} is not attached")
            index = self._owner.pop(camera_id)
            del self._cameras[camera_id]
            self._fences.pop(camera_id, None)
            child = self._workers[index]
            self._tell(child, ("remove", camera_id))
            child.status.pop(camera_id, None)
            child.overlays.pop(camera_id, None)
            rings = self._rings.pop(camera_id, None)
        if rings is not None:  # unlinking now is safe: mappings in the worker/detector stay valid until closed
            for ring in rings:
                ring.close()

    # -- VideoEngine: what the API needs ---------------------------------------------------------------------------
    def camera_status(self) -> dict[str, dict[str, Any]]:
        """Per camera: ``CameraStatus.to_dict()`` as its worker last reported it (twice a second), plus
        ``analysis`` (the pipeline's counters: process/skipped/detection fps, processed, skipped incl.
        ``ring_skipped``), ``detection_fps`` and ``worker`` (its worker's index). A camera whose worker is down reads
        ``state: offline`` with the reason until the restarted worker reports it."""
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            owners = dict(self._owner)
        for cid, index in owners.items():
            child = self._workers[index]
            entry = child.status.get(cid)
            if not child.alive:
                reason = f"video worker {index} is down (exit {child.last_exit}); restarting"
                entry = {**(entry or {}), "camera_id": cid, "state": "offline", "reason": reason,
                         "camera_fps": 0.0, "process_fps": 0.0, "skipped_fps": 0.0, "detection_fps": 0.0}
            elif entry is None:
                entry = {"camera_id": cid, "state": "starting", "reason": f"video worker {index} starting"}
            out[cid] = {**entry, "worker": index}
        return out

    def latest_frame(self, camera_id: str) -> Frame | None:
        rings = self._rings.get(camera_id)
        if rings is None:
            return None
        try:
            got = rings[0].latest()
        except (TypeError, ValueError):  # removed (ring closed) while we read it
            return None
        if got is None:
            return None
        image, seq, at = got
        return Frame(camera_id=camera_id, seq=seq, pts=0.0, captured_at=at, image=image)

    def overlay(self, camera_id: str) -> list[OverlayBox]:
        index = self._owner.get(camera_id)
        if index is None or not self._workers[index].alive:
            return []
        rows = self._workers[index].overlays.get(camera_id, [])
        return [OverlayBox(box=tuple(box), label=label, score=score, track_id=tid) for box, label, score, tid in rows]

    def stats(self) -> dict[str, Any]:
        workers = []
        for i, child in enumerate(self._workers):
            workers.append({"index": i, "pid": child.proc.pid if child.proc is not None else None,
                            "alive": child.alive, "restarts": child.restarts, "last_exit": child.last_exit,
                            "cameras": sorted(c for c, w in self._owner.items() if w == i), **child.stats})
        ring_skipped = sum(r[1].skipped for r in list(self._rings.values()))
        det = self._detector
        return {"model_status": self.model_status, "video_workers": self.n_workers, "workers": workers,
                "detector": {"pid": det.proc.pid if det.proc is not None else None, "alive": det.alive,
                             "restarts": det.restarts, "last_exit": det.last_exit, **det.stats},
                "ring_skipped": ring_skipped, "shm_prefix": self.prefix,
                "anomalies_published": sum(w.stats.get("anomalies_published", 0) for w in self._workers)}

    def pids(self) -> dict[str, int | None]:
        """Process ids by role name (tests and the benchmark's CPU split)."""
        return {c.name: (c.proc.pid if c.proc is not None and c.alive else None) for c in [*self._workers, self._detector]}

    # -- internals: placement and rings ------------------------------------------------------------------------
    def _place(self, camera: Any) -> int:
        counts = [0] * self.n_workers
        for w in self._owner.values():
            counts[w] += 1
        index = min(range(self.n_workers), key=lambda i: (counts[i], i))
        self._cameras[camera.id] = camera
        self._owner[camera.id] = index
        self._make_rings(camera)
        return index

    def _make_rings(self, camera: Any) -> None:
        n = self._ring_no
        self._ring_no += 1
        width = int(camera.analysis.width)
        frame_bytes = width * (2 * width) * 3  # any aspect up to 1:2 (portrait) at the analysis width
        frames = Ring(f"{self.prefix}f{n}", FRAME_SLOTS, frame_bytes, create=True)
        try:
            crops = Ring(f"{self.prefix}c{n}", CROP_SLOTS, crop_size(self.parts.detection), create=True)
        except Exception:
            frames.close()
            raise
        self._rings[camera.id] = (frames, crops)

    def _ring_names(self, camera_id: str) -> CameraRings:
        frames, crops = self._rings[camera_id]
        return CameraRings(frames.name, crops.name)

    # -- internals: processes ------------------------------------------------------------------------------------
    def _start_detector(self, wait_ready: bool) -> None:
        child = self._detector
        parent, child_end = self._ctx.Pipe()
        spec = DetectorSpec(self.parts.detection, self.parts.base_dir, self._address, self._authkey, self._log_level)
        proc = self._ctx.Process(target=run_detector, args=(spec, child_end), name="gw-detector", daemon=True)
        proc.start()
        child_end.close()
        child.proc, child.conn, child.started_at, child.restart_at = proc, parent, time.monotonic(), None
        child.stats = {}  # counters are per process: a restarted detector starts from zero
        if wait_ready:
            self._await_ready(child)

    def _await_ready(self, child: _Child) -> None:
        deadline = time.monotonic() + DETECTOR_READY_S
        while time.monotonic() < deadline:
            if child.conn.poll(0.2):
                try:
                    msg = child.conn.recv()
                except (EOFError, OSError):
                    break
                if msg[0] == "ready":
                    self._on_detector_ready(msg[1])
                    return
            elif not child.alive:
                break
        self._model_status = f"detector process failed to start (exit {child.proc.exitcode})"
        raise RuntimeError(self._model_status)

    def _on_detector_ready(self, models: dict[str, ModelInfo]) -> None:
        self._models = models
        info = models.get("objects")
        log.info("detector process ready: %s", info.status if info else "no object model")

    def _start_worker(self, index: int) -> None:
        child = self._workers[index]
        cams = [(c, self._ring_names(cid), self._fences.get(cid)) for cid, c in self._cameras.items()
                if self._owner.get(cid) == index]
        spec = WorkerSpec(index, self.parts.ingest, self._worker_detection(), self.parts.base_dir, self.parts.evidence_dir,
                          self.publish_factory, self._address, self._authkey, self._models, self._log_level)
        parent, child_end = self._ctx.Pipe()
        proc = self._ctx.Process(target=run_worker, args=(spec, child_end, cams), name=f"gw-video-worker-{index}",
                                 daemon=True)
        proc.start()
        child_end.close()
        child.proc, child.conn, child.started_at, child.restart_at = proc, parent, time.monotonic(), None
        child.status, child.overlays = {}, {}

    def _worker_detection(self) -> DetectionConfig:
        """The detection config a worker runs with: the host's in-flight crop budget shared out over the workers,
        so N workers keep the one detector as busy as one process did instead of queuing N times as much."""
        m = self.parts.detection.model
        total = m.max_inflight or 2 * m.max_batch
        share = max(m.max_batch, -(-total // self.n_workers))
        return self.parts.detection.model_copy(update={"model": m.model_copy(update={"max_inflight": share})})

    def _tell(self, child: _Child, msg: tuple) -> None:
        conn = child.conn
        if conn is None or not child.alive:
            return  # a restarting worker gets its cameras from the engine's table when it starts
        try:
            conn.send(msg)
        except (OSError, EOFError, ValueError):
            log.warning("%s did not take %s; it is being restarted", child.name, msg[0])

    def _reap(self, child: _Child, timeout: float) -> None:
        proc = child.proc
        if proc is None:
            return
        proc.join(timeout)
        if proc.is_alive():
            log.warning("%s did not stop in %.0fs; killing it", child.name, timeout)
            proc.kill()
            proc.join(5.0)
        child.last_exit = proc.exitcode
        if child.conn is not None:
            child.conn.close()
            child.conn = None

    # -- the monitor thread --------------------------------------------------------------------------------------
    def _watch(self) -> None:
        """Read status messages; notice dead children and restart them with back-off."""
        while not self._stop.is_set():
            children = [c for c in (*self._workers, self._detector) if c.conn is not None]
            waitables: list[Any] = [c.conn for c in children] + [c.proc.sentinel for c in children if c.alive]
            ready = wait(waitables, timeout=0.25) if waitables else []
            for child in children:
                if child.conn in ready:
                    self._drain(child)
            now = time.monotonic()
            for index, child in enumerate(self._workers):
                self._check(child, now, lambda i=index: self._start_worker(i))
            self._check(self._detector, now, lambda: self._start_detector(wait_ready=False))
            if not waitables:
                self._stop.wait(0.25)

    def _drain(self, child: _Child) -> None:
        conn = child.conn
        try:
            while conn is not None and conn.poll():
                msg = conn.recv()
                if msg[0] == "status":
                    _, status, overlays, stats = msg
                    with self._lock:  # cameras removed meanwhile are not brought back by a late report
                        child.status = {k: v for k, v in status.items() if k in self._owner}
                    child.overlays, child.stats = overlays, stats
                elif msg[0] == "stats":
                    child.stats = msg[1]
                elif msg[0] == "ready":
                    self._on_detector_ready(msg[1])
        except (EOFError, OSError):
            pass  # the process died; _check restarts it

    def _check(self, child: _Child, now: float, restart: Callable[[], None]) -> None:
        if self._stop.is_set() or child.proc is None:
            return
        if child.restart_at is None:
            if child.alive:
                return
            child.proc.join(0.1)
            child.last_exit = child.proc.exitcode
            if child.conn is not None:
                child.conn.close()
                child.conn = None
            ran = now - child.started_at
            if ran >= HEALTHY_AFTER_S:
                child.backoff.reset()
            delay = child.backoff.next_delay()
            child.restart_at = now + delay
            log.error("%s died (exit %s) after %.0fs; restarting in %.0fs", child.name, child.last_exit, ran, delay)
            return
        if now >= child.restart_at:
            with self._lock:
                child.restarts += 1
                try:
                    restart()
                except Exception:  # noqa: BLE001 - try again later rather than lose the monitor
                    log.exception("restarting %s failed", child.name)
                    child.restart_at = now + BACKOFF_MAX_S
