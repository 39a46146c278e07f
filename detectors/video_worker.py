"""One video worker process: the single-process video path (CameraManager + VideoPipeline) for a share of the
host's cameras, with the detector in another process.

Why reuse rather than rewrite: decoding, pacing, health, motion, admission at ``detect_fps``, tracking, rules,
evidence and anomaly publishing are the same code as in one process; only two things differ here:

* the pipeline's model and batcher are stand-ins (``RemoteModel``, ``DetectorClient``) that put crops into the
  camera's shared-memory crop ring and ask the host's detector process for the rows;
* every analysis frame is also written to the camera's frame ring, so the engine's parent process can serve
  ``latest_frame`` (snapshots, MJPEG, WebRTC) without a copy over a pipe.

Anomalies are published from here through the ``publish_factory`` the engine was given (the Redis outbox: no
callable crosses a process boundary). Status, counters and overlay boxes go to the parent as one small message
every ``status_period_s``; commands (add / update / remove / stop) come back on the same pipe. If the parent goes
away, the worker stops.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from ingest.anomaly import Anomaly, FenceStamp, stamp_fence
from detectors.config import DetectionConfig
from detectors.detector_process import DetectorClient, ModelInfo, RemoteModel
from detectors.health import publish_health
from detectors.pipeline import VideoPipeline
from ingest.config import IngestConfig
from ingest.frame import Frame
from ingest.video.health import CameraStatus, HealthEvent
from ingest.video.shm import Ring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraRings:
    """The shared-memory segments the engine created for one camera."""

    frames: str  # latest analysis frames, for the parent's snapshots and live view
    crops: str  # model inputs on their way to the detector process


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process is started with (picklable for the spawn start method)."""

    index: int
    ingest: IngestConfig
    detection: DetectionConfig
    base_dir: Path
    evidence_dir: Path
    publish_factory: Callable[[], Any]
    detector_address: str
    authkey: bytes
    models: dict[str, ModelInfo]
    log_level: int = logging.INFO
    status_period_s: float = 0.5


class _Publisher:
    """Whatever ``publish_factory()`` returned: a callable, or an object with ``publish`` (and maybe ``flush``).
    Anomalies of pooled cameras leave stamped with the fence of the camera's lease (``fences``)."""

    def __init__(self, made: Any):
        self._publish: Callable[[Any], None] = made.publish if hasattr(made, "publish") else made
        self._flush = getattr(made, "flush", None)
        self.fences: dict[str, FenceStamp] = {}

    def publish(self, anomaly: Anomaly) -> None:
        self._publish(stamp_fence(anomaly, self.fences))

    def flush(self) -> None:
        if self._flush is not None:
            try:
                self._flush()
            except Exception:  # noqa: BLE001 - Redis down: the outbox keeps them, next flush tries again
                log.debug("outbox flush failed", exc_info=True)


class VideoWorker:
    """The worker process's parts; ``serve`` runs until the engine says stop or goes away."""

    def __init__(self, spec: WorkerSpec, control: Connection):
        self.spec = spec
        self.control = control
        self.publisher = _Publisher(spec.publish_factory())
        self.detector = DetectorClient(spec.detector_address, spec.authkey)
        aux = {k: RemoteModel(v) for k, v in spec.models.items() if k != "objects"}
        self.pipeline = VideoPipeline(spec.detection, spec.base_dir, spec.evidence_dir, self.publisher.publish,
                                      model=RemoteModel(spec.models["objects"]), worker=self.detector,
                                      aux_models=aux)
        from ingest.video import CameraManager  # heavy (PyAV, GStreamer plug-ins): only in the worker

        self.cameras = CameraManager(spec.ingest, spec.base_dir, sink=self._sink, on_health=self._on_health)
        self._configs: dict[str, Any] = {}
        self._frames: dict[str, Ring] = {}
        self._crops: dict[str, Ring] = {}
        self._errors: dict[str, str] = {}

    # -- frames and health -----------------------------------------------------------------------------------
    def _sink(self, frame: Frame) -> None:
        ring = self._frames.get(frame.camera_id)
        if ring is not None:
            ring.put(frame.image, frame.seq, frame.captured_at)
        self.pipeline.submit(frame)

    def _on_health(self, event: HealthEvent) -> None:
        publish_health(event, self._configs, self.publisher.publish)

    # -- cameras -----------------------------------------------------------------------------------------------
    def add(self, camera: Any, rings: CameraRings, fence: FenceStamp | None = None) -> None:
        cid = camera.id
        self.fence(cid, fence)
        self._frames[cid] = Ring(rings.frames)
        crops = self._crops[cid] = Ring(rings.crops)
        crops.reset()  # a previous owner of this camera may have died with slots in flight
        self.detector.attach(cid, crops)
        self._configs[cid] = camera
        self._errors.pop(cid, None)
        try:
            self.pipeline.configure_camera(cid, camera.pose, camera)
        except ValueError as exc:
            self._errors[cid] = f"analytics refused: {exc}"
            log.warning("camera %s: %s", cid, self._errors[cid])
            return
        self.cameras.start([camera])  # a source that cannot be attached is parked with its reason, not raised

    def fence(self, camera_id: str, stamp: FenceStamp | None) -> None:
        """The lease this camera is analysed under now (None: not pooled)."""
        if stamp is None:
            self.publisher.fences.pop(camera_id, None)
        else:
            self.publisher.fences[camera_id] = stamp

    def update(self, camera: Any) -> None:
        cid = camera.id
        self._configs[cid] = camera
        try:
            self.pipeline.configure_camera(cid, camera.pose, camera)
            self._errors.pop(cid, None)
        except ValueError as exc:
            self._errors[cid] = f"analytics refused: {exc}"
            return
        try:
            self.cameras.update(camera)
        except Exception as exc:  # noqa: BLE001 - SourceError subclasses: keep the reason for the status
            self._errors[cid] = getattr(exc, "reason", str(exc))

    def remove(self, camera_id: str) -> None:
        try:
            self.cameras.remove(camera_id)
        except Exception:  # noqa: BLE001 - UnknownCameraError: it never attached
            pass
        self.pipeline.remove_camera(camera_id)
        self._configs.pop(camera_id, None)
        self._errors.pop(camera_id, None)
        self.detector.detach(camera_id)
        self.publisher.fences.pop(camera_id, None)
        for rings in (self._frames, self._crops):
            ring = rings.pop(camera_id, None)
            if ring is not None:
                ring.close(unlink=False)

    # -- reports -----------------------------------------------------------------------------------------------
    def report(self) -> tuple:
        stats = self.pipeline.stats()
        per_cam = stats.pop("cameras", {})
        statuses = self.cameras.status()
        out: dict[str, dict[str, Any]] = {}
        overlays: dict[str, list[tuple]] = {}
        for cid in self._configs:
            status = statuses.get(cid)
            entry = status.to_dict() if status is not None else CameraStatus(cid, "error", self._errors.get(cid, "not attached")).to_dict()
            if cid in self._errors and status is None:
                entry["reason"] = self._errors[cid]
            analysis = dict(per_cam.get(cid, {}))
            crops = self._crops.get(cid)
            ring_skipped = crops.skipped if crops is not None else 0
            analysis["ring_skipped"] = ring_skipped
            analysis["skipped"] = analysis.get("skipped", 0) + ring_skipped
            entry["analysis"] = analysis
            entry["detection_fps"] = analysis.get("detection_fps", 0.0)
            entry["worker"] = self.spec.index
            out[cid] = entry
            overlays[cid] = self._overlay(cid)
        stats["pid"] = os.getpid()
        stats["reported_at"] = time.time()  # counters are as of this moment (rates over messages use it)
        return ("status", out, overlays, stats)

    def _overlay(self, camera_id: str) -> list[tuple]:
        slot = self.pipeline._cameras.get(camera_id)  # noqa: SLF001 - the tracks the analysis thread holds
        tracker = slot.analyzer.tracker if slot is not None else None
        if tracker is None:
            return []
        return [(tuple(float(v) for v in o.box), o.label, float(o.score), o.id) for o in list(tracker.objects.values())]

    # -- the loop ------------------------------------------------------------------------------------------------
    def serve(self, cameras: list[tuple[Any, CameraRings, FenceStamp | None]]) -> None:
        self.detector.start()
        self.pipeline.start()
        for camera, rings, fence in cameras:
            self.add(camera, rings, fence)
        next_report = 0.0
        try:
            while True:
                now = time.monotonic()
                if now >= next_report:
                    self.publisher.flush()
                    self.control.send(self.report())
                    next_report = now + self.spec.status_period_s
                if not self.control.poll(max(0.0, next_report - time.monotonic())):
                    continue
                msg = self.control.recv()
                if msg[0] == "stop":
                    break
                if msg[0] == "add":
                    self.add(msg[1], msg[2], msg[3])
                elif msg[0] == "fence":
                    self.fence(msg[1], msg[2])
                elif msg[0] == "update":
                    self.update(msg[1])
                elif msg[0] == "remove":
                    self.remove(msg[1])
        except (EOFError, OSError):
            log.warning("worker %d: the engine went away; stopping", self.spec.index)
        finally:
            self.close()

    def close(self) -> None:
        self.cameras.stop()
        self.pipeline.stop()
        self.detector.stop()
        self.publisher.flush()
        for rings in (self._frames, self._crops):
            for ring in rings.values():
                ring.close(unlink=False)
            rings.clear()


def run_worker(spec: WorkerSpec, control: Connection, cameras: list[tuple[Any, CameraRings, FenceStamp | None]]) -> None:
    """Process entry point (spawn): build the worker and serve until stopped."""
    logging.basicConfig(level=spec.log_level, format=f"%(asctime)s %(levelname)s video-worker-{spec.index} %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole group; the engine stops us in order
    VideoWorker(spec, control).serve(cameras)
