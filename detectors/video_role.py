"""The video role: runs a ``VideoEngine`` over the deployment's cameras and publishes their state to Redis.

It holds no web server. The API (in this process or another, on this host or another) reads what
``CameraStatePublisher`` writes and sends camera changes through ``CameraControl``; this role applies
them to its engine. Anomalies leave through ``publish`` (the anomaly stream's outbox), health changes
become 设备离线 anomalies here, beside the cameras.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from detectors.anomaly import Anomaly
from detectors.camera_state import CameraControl, CameraKeys, CameraStatePublisher, apply_overrides
from detectors.engine import VideoEngine

log = logging.getLogger(__name__)


def make_engine(deployment: Any, workers: int | None, *, publish: Callable[[Anomaly], None],
                on_health: Callable[[Any], None] | None, evidence_dir: Path, sources: bool = True,
                publish_factory: Callable[[], Any] | None = None) -> VideoEngine:
    """The engine ``--video-workers`` asks for: 0 = every camera in this process (``InProcessVideo``),
    N ≥ 1 = N worker processes with shared-memory frames and one detector process (``WorkerPoolVideo``).

    ``None`` means the default: one worker per core. Worker processes cannot be handed ``publish``; they
    build their own publisher from ``publish_factory`` (a picklable recipe, e.g. ``alerts.publishing.OutboxFactory``).
    """
    from detectors.inprocess import InProcessVideo

    if workers is None:
        workers = os.cpu_count() or 1
    if workers >= 1 and sources:
        if publish_factory is None:
            raise ValueError("--video-workers N (N >= 1) needs a publish_factory for the worker processes")
        from detectors.worker_pool import VideoParts, WorkerPoolVideo

        parts = VideoParts(deployment.ingest, deployment.detection, Path(deployment.base_dir), Path(evidence_dir))
        return WorkerPoolVideo(parts, workers=workers, publish_factory=publish_factory)
    return InProcessVideo(deployment.detection, deployment.ingest, deployment.base_dir, evidence_dir,
                          publish, on_health, sources=sources)


class VideoRole:
    """Cameras in, anomalies and camera state out. ``load_camera`` turns the API's camera JSON into a camera."""

    name = "video"

    def __init__(self, deployment: Any, client: redis.Redis, keys: CameraKeys, *, publish: Callable[[Anomaly], None],
                 evidence_dir: Path, load_camera: Callable[[dict[str, Any]], Any], workers: int | None = None,
                 sources: bool = True, publish_factory: Callable[[], Any] | None = None):
        self.deployment, self.client, self.keys = deployment, client, keys
        self.publish = publish
        self.load_camera = load_camera
        self.control = CameraControl(client, keys)
        self.engine = make_engine(deployment, workers, publish=publish, on_health=self._on_health,
                                  evidence_dir=evidence_dir, sources=sources, publish_factory=publish_factory)
        self.publisher = CameraStatePublisher(client, keys, self.engine)
        self._cameras: dict[str, Any] = {c.id: c for c in deployment.cameras}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.sources = sources

    # -- health -------------------------------------------------------------------------------------------
    def _on_health(self, event: Any) -> None:
        from detectors.health import health_anomaly

        cam = self._cameras.get(event.camera_id)
        if cam is None:
            return
        anomaly = health_anomaly(event.camera_id, cam.pose, event.kind, event.reason, event.at)
        if anomaly is not None:
            self.publish(anomaly)

    def camera(self, camera_id: str) -> Any | None:
        return self._cameras.get(camera_id)

    # -- changes from the API -----------------------------------------------------------------------------
    def apply(self, op: str, camera_id: str) -> None:
        """Bring one camera to what the control hash says now (the hash is the truth; the op only wakes us)."""
        doc = self.control.get(camera_id)
        removed = op == "remove" or doc is None
        try:
            if removed:
                self._cameras.pop(camera_id, None)
                self.engine.remove_camera(camera_id)
                self.publisher.forget(camera_id)
                log.info("camera %s removed", camera_id)
                return
            cam = self.load_camera(doc)
            known = camera_id in self._cameras
            self._cameras[camera_id] = cam
            (self.engine.update_camera if known else self.engine.add_camera)(cam)
            log.info("camera %s %s", camera_id, "updated" if known else "added")
        except Exception as exc:  # one bad change must not stop the role or the other cameras
            log.error("camera change %s %s not applied: %s", op, camera_id, exc)

    def _follow(self, stop: threading.Event) -> None:
        self.control.follow_forever(self._after, self.apply, stop, "camera")

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._after = self.control.last_id()  # changes before this are in the hash, read next
        cams = apply_overrides(list(self.deployment.cameras), self.control.overrides(), self.load_camera)
        self._cameras = {c.id: c for c in cams}
        self.engine.start(cams)
        for name, fn in (("video-state", self.publisher.run_forever), ("video-control", self._follow)):
            thread = threading.Thread(target=fn, args=(self._stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("video role: %d cameras, detector: %s", len(cams), self.engine.model_status)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.publisher.retire()
        self.engine.stop()

    def alive(self) -> bool:
        """The state publisher and the camera-change follower still run (the liveness probe)."""
        return all(t.is_alive() for t in self._threads)

    def status(self) -> dict[str, Any]:
        return {"engine": self.engine.stats(), "model_status": self.engine.model_status, "cameras": len(self._cameras)}
