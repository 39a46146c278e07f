"""Support for gateway tests: the real GridWatch runtime (``gateway.runtime.build_runtime``) on real Redis
(a unique stream prefix per test) with SQLite in a temp dir."""
from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import redis

from ingest.anomaly import Anomaly, Evidence
from gateway.config import Deployment, User, load_deployment
from ingest.geo import GeoPoint

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
REDIS_URL = os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
INTEGRATOR_KEY = "test-integrator-key-0123456789abcdef"


@functools.cache
def _demo_deployment() -> Deployment:
    """config/demo.yaml parsed and validated once per test process (~0.3 s each time here; it names no
    environment variable, so every parse gives the same deployment)."""
    return load_deployment()


def make_deployment(tmp: Path, **gateway: Any) -> Deployment:
    """The demo deployment for one test: a deep copy of the parsed demo (a test may change anything in it), its
    own run dir, SQLite file, Redis prefix, MQTT client id and secret key, fast password hashing."""
    dep = _demo_deployment().model_copy(deep=True)
    dep.services.run_dir = str(tmp)
    dep.services.sql_url = f"sqlite:///{tmp}/gridwatch.db"
    dep.services.stream_prefix = f"gwtest-{uuid.uuid4().hex[:10]}"
    dep.services.redis_url = REDIS_URL
    dep.services.autostart = False
    dep.ingest.mqtt.client_id = f"{dep.services.stream_prefix}-ingest"
    dep.gateway.bcrypt_rounds = 4
    dep.alerts.confirm_sources = ["camera"]  # camera events wait on the event wall for an operator
    dep.gateway.secret_key = "test-secret-" + uuid.uuid4().hex
    dep.gateway.users = [u for u in dep.gateway.users if u.username != "integrator"] + [
        User(username="integrator", password="integrator123", role="integrator", api_key=INTEGRATOR_KEY, display_name="集成商")]
    for key, value in gateway.items():
        setattr(dep.gateway, key, value)
    return dep


def build_test_runtime(dep: Deployment, *, sources: bool = False, roles: Any = None) -> Any:
    from gateway.runtime import ROLES, build_runtime

    return build_runtime(dep, sources=sources, roles=roles or ROLES)


def start_role_process(dep: Deployment, role: str) -> Any:
    """One role in a process of its own (multiprocessing spawn), as the supervisor runs it; ``terminate()`` stops it.

    Not daemonic: the video role starts worker processes of its own.
    """
    import multiprocessing

    from gateway.runtime import serve

    proc = multiprocessing.get_context("spawn").Process(target=serve, args=(dep, (role,)), kwargs={"services": False},
                                                        name=f"gridwatch-{role}", daemon=False)
    proc.start()
    return proc


def drop_keys(client: redis.Redis, prefix: str) -> None:
    """The test's keys: streams under ``prefix:`` and the hash-tagged camera/role state under ``{prefix}:``."""
    for pattern in (f"{prefix}:*", "\\{" + prefix + "\\}:*"):
        for key in client.scan_iter(match=pattern, count=1000):
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


class AppServer:
    """uvicorn serving create_app(runtime) in a thread; stop() and start() again on the same port = a gateway restart."""

    def __init__(self, runtime: Any, port: int):
        self.runtime, self.port, self.srv, self.thread = runtime, port, None, None

    def start(self) -> None:
        import uvicorn

        from gateway.app import create_app

        config = uvicorn.Config(create_app(self.runtime), host="127.0.0.1", port=self.port, log_level="warning", ws="websockets")
        self.srv = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.srv.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.srv.started and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the server's started flag
        assert self.srv.started, "uvicorn did not start"

    def stop(self) -> None:
        self.srv.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "uvicorn did not stop"
