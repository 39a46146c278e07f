"""The live WebSocket on a real runtime: authentication, and anomalies/ticket events filtered to the user's grids."""
from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from alerts.streams import publish_anomaly
from gw_support import CROSSING, PLAZA, camera_anomaly, login

pytestmark = pytest.mark.timeout(60)


def _messages(ws, n):
    return [ws.receive_json() for _ in range(n)]


def test_live_requires_a_valid_token(client):
    with client.websocket_connect("/api/v1/live") as ws:
        ws.send_json({"token": "garbage"})
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 4401


def test_integrators_get_no_live_stream(client):
    token = login(client, "integrator", "integrator123")["access_token"]
    with client.websocket_connect(f"/api/v1/live?token={token}") as ws:
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 4403


def test_anomalies_and_ticket_events_are_filtered_by_grid(client, runtime):
    worker = login(client, "worker_my4", "worker123")["access_token"]   # grid 330199002002004 (the crossing)
    operator = login(client, "operator", "operator123")["access_token"]  # the whole district
    with client.websocket_connect("/api/v1/live") as w, client.websocket_connect(f"/api/v1/live?token={operator}") as o:
        w.send_json({"token": worker})
        assert w.receive_json()["type"] == "hello"
        assert o.receive_json()["type"] == "hello"
        elsewhere = camera_anomaly(runtime, where=PLAZA, source_id="cam-plaza")
        here = camera_anomaly(runtime, where=CROSSING, source_id="cam-crossing", kind="illegal_parking")
        publish_anomaly(runtime.redis, runtime.keys, elsewhere)
        publish_anomaly(runtime.redis, runtime.keys, here)
        ref = runtime.intake.file(here)          # a ticket.created event in the worker's grid
        runtime.intake.file(elsewhere)           # and one outside it
        got = _messages(o, 4)
        assert [m["type"] for m in got].count("anomaly") == 2 and [m["type"] for m in got].count("ticket") == 2
        mine = _messages(w, 2)
        assert {m["type"] for m in mine} == {"anomaly", "ticket"}
        anomaly = next(m for m in mine if m["type"] == "anomaly")
        assert anomaly["anomaly"]["id"] == here.id and anomaly["grid"] == "330199002002004"
        ticket = next(m for m in mine if m["type"] == "ticket")
        assert ticket["event"]["ticket"]["id"] == ref.ticket_id and ticket["event"]["type"] == "ticket.created"
        # nothing from the plaza reached the worker: the next message is the next one in their grid
        publish_anomaly(runtime.redis, runtime.keys, camera_anomaly(runtime, where=CROSSING, source_id="cam-crossing"))
        nxt = w.receive_json()
        assert nxt["type"] == "anomaly" and nxt["grid"] == "330199002002004"
