"""The skeleton's promise, end to end through real parts: a real clip → frames → motion → Anomaly →
Redis stream → intake → Ticket in the grid that holds the camera → that grid's duty queue and the SQL
store → listed by ``GET /api/v1/tickets``."""
from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from gateway.config import load_deployment

from ..conftest import DEMO, footage

PLAZA_GRID = "330199001001001"  # base grid that contains cam-plaza in the demo district


def _deployment(tmp_path, prefix: str, model_path: str | None):
    dep = load_deployment(DEMO)
    dep.services.stream_prefix = prefix
    dep.services.run_dir = str(tmp_path)
    dep.cameras = [c for c in dep.cameras if c.id == "cam-plaza"]
    footage("plaza_pedestrians_720p.avi")  # the demo camera plays it as a looping live source; skip without it
    dep.ingest.mqtt.client_id = f"{prefix}-ingest"
    dep.detection.model.path = model_path
    return dep


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)  # polling the system under test with a deadline
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.timeout(120)
def test_real_clip_becomes_a_ticket_on_its_grid_queue(tmp_path, stream_prefix, redis_client):
    from gateway.app import create_app
    from gateway.runtime import build_runtime

    dep = _deployment(tmp_path, stream_prefix, model_path="/nonexistent/model.onnx")
    runtime = build_runtime(dep)
    runtime.start()
    try:
        started = time.time()
        queue = runtime.keys.duty(PLAZA_GRID)
        entries = _wait_for(lambda: redis_client.xrange(queue), 60, f"an entry on the duty queue {queue}")
        latency = time.time() - started

        client = TestClient(create_app(runtime))
        token = client.post("/api/v1/auth/token", data={"username": "operator", "password": "operator123"}).json()["access_token"]
        listed = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200
        tickets = listed.json()["items"]
        ours = [t for t in tickets if t["grid_code"] == PLAZA_GRID]
        assert ours, f"no ticket for {PLAZA_GRID} in {tickets}"
        assert ours[0]["source"] == {"kind": "camera", "id": "cam-plaza", "zone": None}
        queued_ids = {fields[b"ticket_id"].decode() for _, fields in entries}
        assert str(ours[0]["id"]) in queued_ids

        status = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"}).json()
        assert status["motion_only"] is True and "model" in status["detector"].lower()
        print(f"clip → ticket on queue in {latency:.1f} s")
    finally:
        runtime.stop()
