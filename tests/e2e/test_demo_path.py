"""The skeleton's promise, end to end through real parts: a real clip → frames → motion → Anomaly →
Redis stream → intake → Ticket in the grid that holds the camera → (operator confirms) → that grid's
duty queue and the SQL store → listed by ``GET /api/v1/tickets``."""
from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from gateway.config import load_deployment

from tests.support import wait_for

from ..conftest import DEMO, footage

PLAZA_GRID = "330199001001001"  # base grid that contains cam-plaza in the demo district


@pytest.mark.timeout(120)
def test_real_clip_becomes_a_ticket_on_its_grid_queue(tmp_path, stream_prefix, redis_client):
    from gateway.app import create_app
    from gateway.runtime import build_runtime

    footage("plaza_pedestrians_720p.avi")  # the demo camera plays it as a looping live source
    dep = load_deployment(DEMO)
    dep.services.stream_prefix = stream_prefix
    dep.services.run_dir = str(tmp_path)
    dep.ingest.mqtt.client_id = f"{stream_prefix}-ingest"
    dep.cameras = [c for c in dep.cameras if c.id == "cam-plaza"]
    dep.cameras[0].rules = [r.model_copy(update={"tier": "alert"}) if r.kind == "motion" else r
                            for r in dep.cameras[0].rules]  # motion is activity by default; this camera files it
    dep.detection.model.path = "/nonexistent/model.onnx"  # the run must go on, motion-only, and say so

    dep.alerts.mqtt_topic_prefix = f"{stream_prefix}/tickets"
    pushed: list[str] = []  # the MQTT push a grid worker's app subscribes to
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = lambda c, u, m: pushed.append(m.topic)
    listener.connect("127.0.0.1", 1883)
    listener.subscribe(f"{stream_prefix}/tickets/{PLAZA_GRID}/#", qos=1)
    listener.loop_start()
    runtime = build_runtime(dep)
    runtime.start()
    try:
        client = TestClient(create_app(runtime))
        token = client.post("/api/v1/auth/token", data={"username": "operator", "password": "operator123"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        def plaza_tickets():
            listed = client.get("/api/v1/tickets", params={"grid": PLAZA_GRID}, headers=auth)
            assert listed.status_code == 200, listed.text
            return [t for t in listed.json()["items"] if t["grid_code"] == PLAZA_GRID]

        ticket = wait_for(plaza_tickets, 60, what=f"a ticket in grid {PLAZA_GRID}")[0]
        assert ticket["source"] == {"kind": "camera", "id": "cam-plaza", "zone": None}
        assert ticket["status"] == "reported"  # camera events wait on the event wall for the operator

        confirmed = client.post(f"/api/v1/tickets/{ticket['id']}/actions/register", json={"note": "确认"}, headers=auth)
        assert confirmed.status_code == 200, confirmed.text
        queue = runtime.keys.duty(PLAZA_GRID)
        entries = wait_for(lambda: redis_client.xrange(queue), 10, what=f"an entry on the duty queue {queue}")
        assert str(ticket["id"]) in {fields[b"ticket_id"].decode() for _, fields in entries}
        wait_for(lambda: any(t.endswith("/ticket.register") for t in pushed), 10, what=f"an MQTT push for the grid (got {pushed})")

        status = client.get("/api/v1/status", headers=auth).json()
        assert status["motion_only"] is True and "model file not found" in status["detector"]
    finally:
        runtime.stop()
        listener.loop_stop()
        listener.disconnect()
