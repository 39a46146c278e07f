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

from ingest.anomaly import Anomaly, FenceStamp, stamp_fence
from detectors.camera_state import CameraControl, CameraKeys, CameraStatePublisher, apply_overrides
from detectors.engine import VideoEngine
from detectors.pool_keys import PoolKeys
from detectors.pool_member import PoolMember, PoolTiming, bounded_client, default_worker_id
from ingest.changes import ConfigStore

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

        parts = VideoParts(deployment.ingest, deployment.detection, Path(deployment.base_dir), evidence_dir)
        return WorkerPoolVideo(parts, workers=workers, publish_factory=publish_factory)
    return InProcessVideo(deployment.detection, deployment.ingest, deployment.base_dir, evidence_dir,
                          publish, on_health, sources=sources)


class VideoRole:
    """Cameras in, anomalies and camera state out. ``load_camera`` turns the API's camera JSON into a camera.

    With ``detection.pool.enabled`` the role is a member of the video pool (``detectors.pool_member``): its engine
    analyses only the cameras whose lease it holds, and their anomalies carry the lease's fence."""

    name = "video"

    def __init__(self, deployment: Any, client: redis.Redis, keys: CameraKeys, *, publish: Callable[[Anomaly], None],
                 evidence_dir: Path, load_camera: Callable[[dict[str, Any]], Any], workers: int | None = None,
                 sources: bool = True, publish_factory: Callable[[], Any] | None = None, config_store: ConfigStore,
                 worker_id: str | None = None):
        """``config_store``: where cameras changed through the API live (``ingest.changes.ConfigStore``, SQL);
        ``worker_id``: this role's name in the video pool (``detection.pool``), default host-pid."""
        self.deployment, self.client, self.keys = deployment, client, keys
        self.fences: dict[str, FenceStamp] = {}
        self.publish = lambda anomaly: publish(stamp_fence(anomaly, self.fences))
        self.load_camera = load_camera
        self.control = CameraControl(client, keys, config_store)
        self.engine = make_engine(deployment, workers, publish=self.publish, on_health=self._on_health,
                                  evidence_dir=evidence_dir, sources=sources, publish_factory=publish_factory)
        self.pool = self._member(deployment.detection.pool, worker_id or default_worker_id()) \
            if deployment.detection.pool.enabled else None
        self.publisher = CameraStatePublisher(client, keys, self.engine,
                                              worker=self.pool.member_id if self.pool else None, lease=self._lease_of)
        self._cameras: dict[str, Any] = {c.id: c for c in deployment.cameras}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.sources = sources

    # -- health -------------------------------------------------------------------------------------------
    def _on_health(self, event: Any) -> None:
        from detectors.health import publish_health

        publish_health(event, self._cameras, self.publish)

    def camera(self, camera_id: str) -> Any | None:
        return self._cameras.get(camera_id)

    # -- the pool -----------------------------------------------------------------------------------------
    def _member(self, cfg: Any, member_id: str) -> PoolMember:
        timing = PoolTiming(member_ttl_s=cfg.member_ttl_s, lease_ttl_s=cfg.lease_ttl_s, tick_s=cfg.tick_s)
        client = bounded_client(self.client, timing.redis_timeout_s)
        return PoolMember(client, PoolKeys(self.keys.prefix), member_id, on_gain=self._gain, on_lose=self._lose,
                          timing=timing)

    def _gain(self, camera_id: str, fence: int) -> None:
        """The lease is ours: stamp the camera's anomalies with its fence, then start analysing it."""
        cam = self._cameras.get(camera_id)
        if cam is None:
            return
        stamp = FenceStamp(camera=camera_id, owner=self.pool.member_id, token=fence)
        self.fences[camera_id] = stamp
        if hasattr(self.engine, "set_fence"):
            self.engine.set_fence(camera_id, stamp)
        self.engine.add_camera(cam)
        log.debug("video pool: camera %s is ours (fence %d)", camera_id, fence)

    def _lose(self, camera_id: str) -> None:
        """Stop analysing before the lease goes (the pool calls this first)."""
        try:
            self.engine.remove_camera(camera_id)
        except KeyError:
            pass
        self.fences.pop(camera_id, None)
        log.debug("video pool: camera %s is no longer ours", camera_id)

    def _lease_of(self, camera_id: str) -> dict[str, Any] | None:
        stamp = self.fences.get(camera_id)
        return {"owner": stamp.owner, "fence": stamp.token} if stamp is not None else None

    # -- changes from the API -----------------------------------------------------------------------------
    def apply(self, op: str, camera_id: str) -> None:
        """Bring one camera to what its row in the store says now (the store is the truth; the op only wakes us)."""
        try:
            doc = self.control.get(camera_id)
            removed = op == "remove" or doc is None
            if self.pool is not None:
                self._apply_pooled(camera_id, None if removed else doc)
                return
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

    def _apply_pooled(self, camera_id: str, doc: dict[str, Any] | None) -> None:
        """A pooled role keeps every camera's config, analyses it only while it holds the lease: the next tick
        takes a new camera's lease (if this member wins it) and gives a removed one's back."""
        try:
            with self.pool.lock:
                held = camera_id in self.pool.held
                if doc is None:
                    self._cameras.pop(camera_id, None)
                    if held:  # stop now; the next tick gives the lease back
                        self.engine.remove_camera(camera_id)
                        self.publisher.forget(camera_id)
                else:
                    cam = self._cameras[camera_id] = self.load_camera(doc)
                    if held:
                        self.engine.update_camera(cam)
                self.pool.set_cameras(self._cameras)
            log.info("camera %s %s (pooled)", camera_id, "removed" if doc is None else "changed")
        except Exception as exc:  # one bad change must not stop the role or the other cameras
            log.error("camera change %s not applied: %s", camera_id, exc)

    def _follow(self, stop: threading.Event) -> None:
        self.control.follow_forever(self._after, self.apply, stop, "camera")

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._after = self.control.last_id()  # changes before this are in the store, read next
        cams = apply_overrides(list(self.deployment.cameras), self.control.overrides(), self.load_camera)
        self._cameras = {c.id: c for c in cams}
        loops: list[tuple[str, Callable[[threading.Event], None]]] = [("video-state", self.publisher.run_forever),
                                                                     ("video-control", self._follow)]
        if self.pool is not None:
            self.pool.join()  # raises WorkerIdTaken: a second process with this worker id is refused
            self.pool.set_cameras(self._cameras)
            self.engine.start([])  # cameras come as their leases are taken
            loops.append(("video-pool", self.pool.run_forever))
        else:
            self.engine.start(cams)
        for name, fn in loops:
            thread = threading.Thread(target=fn, args=(self._stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("video role: %d cameras%s, detector: %s", len(cams),
                 f" (pooled as {self.pool.member_id})" if self.pool else "", self.engine.model_status)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.pool is not None:
            self.pool.leave()  # cameras stop, leases go back: survivors take over now, not after a TTL
        self.publisher.retire()
        self.engine.stop()

    def alive(self) -> bool:
        """The state publisher and the camera-change follower still run (the liveness probe)."""
        return all(t.is_alive() for t in self._threads)

    def status(self) -> dict[str, Any]:
        return {"engine": self.engine.stats(), "model_status": self.engine.model_status, "cameras": len(self._cameras),
                "pool": self.pool.status() if self.pool is not None else None}
