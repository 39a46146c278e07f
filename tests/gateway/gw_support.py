"""Support for gateway tests: a real GridWatch runtime for API tests: real Redis (unique stream prefix), SQLite in a temp dir, real case service.

The lead's ``gateway.runtime.build_runtime(dep, sources=False)`` is used when it imports; until every part
it wires exists, the same core (store, intake, case service) is composed here from ``alerts``.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import redis

from alerts.grids import GridIndex, load_grid_file
from alerts.streams import StreamKeys
from detectors.anomaly import Anomaly, Evidence
from gateway.config import Deployment, User, load_deployment
from ingest.geo import GeoPoint

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
REDIS_URL = os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
INTEGRATOR_KEY = "test-integrator-key-0123456789abcdef"


def make_deployment(tmp: Path, **gateway: Any) -> Deployment:
    dep = load_deployment()
    dep.services.run_dir = str(tmp)
    dep.services.sql_url = f"sqlite:///{tmp}/gridwatch.db"
    dep.services.stream_prefix = f"gwtest-{uuid.uuid4().hex[:10]}"
    dep.services.redis_url = REDIS_URL
    dep.services.autostart = False
    dep.gateway.bcrypt_rounds = 4
    dep.alerts.confirm_sources = ["camera"]  # camera events wait on the event wall for an operator
    dep.gateway.secret_key = "test-secret-" + uuid.uuid4().hex
    dep.gateway.users.append(User(username="integrator", password="integrator123", role="integrator",
                                  api_key=INTEGRATOR_KEY, display_name="集成商"))
    for key, value in gateway.items():
        setattr(dep.gateway, key, value)
    return dep


class CoreRuntime:
    """What the gateway reads from a runtime, minus video and MQTT (used until gateway.runtime builds)."""

    def __init__(self, dep: Deployment):
        from alerts.intake import Intake
        from alerts.service import CaseService
        from alerts.store import open_store

        self.deployment = dep
        self.keys = StreamKeys(dep.services.stream_prefix)
        self.grids: GridIndex = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
        dep.run_dir.mkdir(parents=True, exist_ok=True)
        self.evidence_dir = dep.run_dir / "evidence"
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        self.redis = redis.Redis.from_url(dep.services.redis_url)
        self.store = open_store(dep.sql_url)
        self.intake = Intake(self.store, self.grids, dep.alerts, self.redis, self.keys, consumer="test")
        self.cases = CaseService(self.store, self.grids, dep.alerts, self.redis, self.keys)
        self.cameras = None
        self.pipeline = None
        self.devices = None

    def status(self) -> dict:
        return {"name": self.deployment.name, "cameras": {}, "pipeline": {}}

    def press_alarm(self, device_id: str, body: bytes, headers: Any) -> Any:
        """The real alarm path: ingest.devices verifies and de-duplicates, detectors makes the Anomaly, intake files it."""
        from detectors.sensor_rules import alarm_anomaly
        from ingest.devices import DeviceRegistry, PressLedger, RedisNonceStore, handle_press

        if self.devices is None:
            self.devices = DeviceRegistry(self.deployment.devices)
        prefix = self.keys.prefix

        def file(press: Any) -> str | None:
            ref = self.intake.file(alarm_anomaly(press, self.devices.get(press.device_id), []))
            return ref.number

        return handle_press(self.devices, body, headers, nonce_store=RedisNonceStore(self.redis, prefix),
                            ledger=PressLedger(self.redis, prefix), on_alarm=file)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.store.close()
        self.redis.close()


class VideoCoreRuntime(CoreRuntime):
    """CoreRuntime plus real video: CameraManager decoding the deployment's cameras into the VideoPipeline,
    and the intake consuming the anomaly stream (used until gateway.runtime builds)."""

    def __init__(self, dep: Deployment):
        import threading

        from detectors.pipeline import VideoPipeline
        from ingest.video import CameraManager

        super().__init__(dep)
        from alerts.streams import publish_anomaly

        self.pipeline = VideoPipeline(dep.detection, dep.base_dir, self.evidence_dir,
                                      publish=lambda a: publish_anomaly(self.redis, self.keys, a))
        self.cameras = CameraManager(dep.ingest, dep.base_dir, sink=self.pipeline.submit)
        for cam in dep.cameras:
            self.pipeline.configure_camera(cam.id, cam.pose, cam)
        self._stop = threading.Event()
        self._intake: threading.Thread | None = None

    def status(self) -> dict:
        return {"name": self.deployment.name, "detector": self.pipeline.model_status,
                "cameras": {cid: s.to_dict() for cid, s in self.cameras.status().items()}, "pipeline": self.pipeline.stats()}

    def start(self) -> None:
        import threading

        self._intake = threading.Thread(target=self.intake.run_forever, args=(self._stop,), daemon=True)
        self._intake.start()
        self.pipeline.start()
        self.cameras.start([c for c in self.deployment.cameras if c.enabled])

    def stop(self) -> None:
        self._stop.set()
        self.cameras.stop()
        self.pipeline.stop()
        if self._intake is not None:
            self._intake.join(10)
        super().stop()


def build_test_runtime(dep: Deployment, *, sources: bool = False) -> Any:
    try:
        from gateway.runtime import build_runtime

        return build_runtime(dep, sources=sources)
    except Exception as exc:  # noqa: BLE001 - the runtime's parts are still being integrated
        import warnings

        warnings.warn(f"gateway.runtime.build_runtime failed ({type(exc).__name__}: {exc}); using the test core runtime")
        return VideoCoreRuntime(dep) if sources else CoreRuntime(dep)


def drop_keys(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


def login(client: Any, username: str, password: str) -> dict:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


PASSWORDS = {"admin": "admin123", "operator": "operator123", "dispatcher": "dispatcher123", "worker_qh1": "worker123",
             "worker_my4": "worker123", "leader_qhb": "leader123", "supervisor": "supervisor123", "integrator": "integrator123"}




FOOTAGE = SHARED / "footage"
PLAZA = GeoPoint(lon=120.105, lat=30.276)      # grid 330199001001001 (worker_qh1, leader_qhb)
CROSSING = GeoPoint(lon=120.135, lat=30.253)   # grid 330199002002004 (worker_my4)


def snapshot(evidence_dir: Path, clip: str = "plaza_pedestrians_720p.avi") -> Evidence:
    """A JPEG of frame 10 of a real clip (a grey card when the footage folder is absent)."""
    image = None
    path = FOOTAGE / clip
    if path.exists():
        cap = cv2.VideoCapture(str(path))
        for _ in range(10):
            ok, frame = cap.read()
            if ok:
                image = frame
        cap.release()
    if image is None:
        image = np.full((360, 640, 3), 90, np.uint8)
    name = f"snap-{uuid.uuid4().hex[:8]}.jpg"
    cv2.imwrite(str(evidence_dir / name), image)
    return Evidence(kind="snapshot", path=name)


def camera_anomaly(rt: Any, where: GeoPoint = PLAZA, source_id: str = "cam-plaza", kind: str = "crowd",
                   evidence: list[Evidence] | None = None) -> Anomaly:
    return Anomaly(kind=kind, source="camera", source_id=source_id, location=where, zone=f"z-{uuid.uuid4().hex[:6]}",
                   title=f"test {kind}", evidence=evidence if evidence is not None else [snapshot(rt.evidence_dir)])


def file_ticket(rt: Any, **kwargs: Any) -> Any:
    """File an anomaly now through the real intake; returns its TicketRef."""
    return rt.intake.file(camera_anomaly(rt, **kwargs))
