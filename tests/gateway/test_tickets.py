"""Tickets over the API on a real runtime: grid scope, 403 bodies that leak nothing, wall, duty queue, evidence, audit."""
from __future__ import annotations

import json

import pytest

from gw_support import CROSSING, file_ticket, snapshot

pytestmark = pytest.mark.timeout(90)
FORBIDDEN = {"detail": "forbidden"}


def test_own_grid_worker_sees_ticket_other_grid_worker_does_not(client, runtime, auth_as):
    ref = file_ticket(runtime)  # at the plaza: grid 330199001001001
    mine = client.get("/api/v1/tickets", headers=auth_as("worker_qh1")).json()
    assert [t["id"] for t in mine["items"]] == [ref.ticket_id]
    assert mine["items"][0]["grid_code"] == "330199001001001" and mine["items"][0]["grid_name"]
    other = client.get("/api/v1/tickets", headers=auth_as("worker_my4")).json()
    assert other["items"] == [] and other["total"] == 0
    # the community leader above the plaza grid sees it too
    assert client.get(f"/api/v1/tickets/{ref.ticket_id}", headers=auth_as("leader_qhb")).status_code == 200


def test_403_bodies_do_not_tell_existing_from_missing(client, runtime, auth_as):
    ref = file_ticket(runtime)
    other = auth_as("worker_my4")
    in_other_grid = client.get(f"/api/v1/tickets/{ref.ticket_id}", headers=other)
    missing = client.get("/api/v1/tickets/987654", headers=other)
    by_number = client.get(f"/api/v1/tickets/{ref.number}", headers=other)
    act_other = client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/sign", headers=other, json={})
    act_missing = client.post("/api/v1/tickets/987654/actions/sign", headers=other, json={})
    ev_other = client.get(f"/api/v1/tickets/{ref.ticket_id}/evidence/0", headers=other)
    responses = [in_other_grid, missing, by_number, act_other, act_missing, ev_other]
    assert [r.status_code for r in responses] == [403] * 6
    assert all(r.json() == FORBIDDEN for r in responses)
    # a forbidden action on a visible ticket answers the same
    role_forbidden = client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/close", headers=auth_as("worker_qh1"), json={})
    assert role_forbidden.status_code == 403 and role_forbidden.json() == FORBIDDEN
    # an admin sees every grid, so a missing id is just missing
    assert client.get("/api/v1/tickets/987654", headers=auth_as("admin")).status_code == 404


def test_wall_confirm_then_worker_signs(client, runtime, auth_as):
    ref = file_ticket(runtime)
    wall = client.get("/api/v1/wall", headers=auth_as("operator")).json()
    card = next(t for t in wall["items"] if t["id"] == ref.ticket_id)
    assert card["status"] == "reported" and card["snapshot"] == f"/tickets/{ref.ticket_id}/evidence/0"
    assert wall["actions"] == {"confirm": "register", "dismiss": "false_alarm"}
    # the worker cannot sign before dispatch: a 409 that names the state, on a ticket they may see
    early = client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/sign", headers=auth_as("worker_qh1"), json={})
    assert early.status_code == 409 and "reported" in early.json()["detail"]
    confirmed = client.post(f"/api/v1/wall/{ref.ticket_id}/confirm", headers=auth_as("operator"))
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "dispatched"
    queue = client.get("/api/v1/queue", headers=auth_as("worker_qh1")).json()["items"]
    item = next(t for t in queue if t["id"] == ref.ticket_id)
    assert "sign" in item["allowed_actions"]
    assert client.get("/api/v1/queue", headers=auth_as("worker_my4")).json()["items"] == []
    signed = client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/sign", headers=auth_as("worker_qh1"), json={"note": "收到"})
    assert signed.status_code == 200
    body = signed.json()
    assert body["status"] == "signed" and body["assignee"] == "worker_qh1"
    assert [h["action"] for h in body["history"]][-2:] == ["register", "sign"]
    assert set(body["allowed_actions"]) >= {"start", "feedback", "request_extension"}
    ext = client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/request_extension", headers=auth_as("worker_qh1"),
                      json={"note": "需要协调物业", "hours": 4})
    assert ext.status_code == 200 and ext.json()["extension_requested"]
    audit = [json.loads(line) for line in (runtime.deployment.run_dir / "audit.jsonl").read_text().splitlines()]
    acts = [(a["who"], a["action"]) for a in audit if a["target"] == f"ticket:{ref.ticket_id}"]
    assert acts == [("operator", "ticket.register"), ("worker_qh1", "ticket.sign"), ("worker_qh1", "ticket.request_extension")]


def test_dismiss_as_false_alarm(client, runtime, auth_as):
    ref = file_ticket(runtime)
    r = client.post(f"/api/v1/wall/{ref.ticket_id}/dismiss", headers=auth_as("operator"), json={"note": "树影"})
    assert r.status_code == 200 and r.json()["status"] == "false_alarm"
    assert client.get("/api/v1/wall", headers=auth_as("operator")).json()["items"] == []
    # workers never get the wall
    assert client.get("/api/v1/wall", headers=auth_as("worker_qh1")).json() == FORBIDDEN


def test_action_parameters_are_checked(client, runtime, auth_as):
    ref = file_ticket(runtime)
    client.post(f"/api/v1/wall/{ref.ticket_id}/confirm", headers=auth_as("operator"))
    client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/sign", headers=auth_as("worker_qh1"))
    no_note = client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/request_extension", headers=auth_as("worker_qh1"), json={"hours": 2})
    assert no_note.status_code == 422 and "note" in no_note.json()["detail"]
    unknown_field = client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/comment", headers=auth_as("worker_qh1"), json={"bogus": 1})
    assert unknown_field.status_code == 422
    naive = client.post(f"/api/v1/tickets/{ref.ticket_id}/actions/request_extension", headers=auth_as("worker_qh1"),
                        json={"note": "x", "deadline": "2030-01-01T00:00:00"})
    assert naive.status_code == 422


def test_query_filters(client, runtime, auth_as):
    a = file_ticket(runtime)
    b = file_ticket(runtime, where=CROSSING, source_id="cam-crossing", kind="illegal_parking")
    op = auth_as("operator")
    ids = lambda r: {t["id"] for t in r.json()["items"]}  # noqa: E731
    assert ids(client.get("/api/v1/tickets", headers=op)) == {a.ticket_id, b.ticket_id}
    assert ids(client.get("/api/v1/tickets", params={"grid": "330199002"}, headers=op)) == {b.ticket_id}
    assert ids(client.get("/api/v1/tickets", params={"category": "0201"}, headers=op)) == {b.ticket_id}
    assert ids(client.get("/api/v1/tickets", params={"status": ["dispatched"]}, headers=op)) == set()
    assert ids(client.get("/api/v1/tickets", params={"since": "2999-01-01T00:00:00+08:00"}, headers=op)) == set()
    assert client.get("/api/v1/tickets", params={"since": "yesterday"}, headers=op).status_code == 422
    # a worker asking for another grid gets nothing, not an error that confirms it exists
    assert ids(client.get("/api/v1/tickets", params={"grid": "330199002002004"}, headers=auth_as("worker_qh1"))) == set()


def test_evidence_served_with_access_control_and_no_traversal(client, runtime, auth_as):
    secret = runtime.deployment.run_dir / "outside.txt"
    secret.write_text("not evidence")
    ev = [snapshot(runtime.evidence_dir)]
    bad = ev[0].model_copy(update={"path": "../outside.txt"})
    ref = file_ticket(runtime, evidence=[ev[0], bad])
    op = auth_as("operator")
    r = client.get(f"/api/v1/tickets/{ref.ticket_id}/evidence/0", headers=op)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    assert client.get(f"/api/v1/tickets/{ref.ticket_id}/evidence/1", headers=op).status_code == 404
    assert client.get(f"/api/v1/tickets/{ref.ticket_id}/evidence/7", headers=op).status_code == 404
    # <img> URLs carry a short-lived media token instead of the access token
    mt = client.post("/api/v1/auth/media-token", headers=op).json()["media_token"]
    assert client.get(f"/api/v1/tickets/{ref.ticket_id}/evidence/0", params={"mt": mt}).status_code == 200
    assert client.get("/api/v1/me", params={"mt": mt}).status_code == 401  # only media endpoints take it
    other_mt = client.post("/api/v1/auth/media-token", headers=auth_as("worker_my4")).json()["media_token"]
    assert client.get(f"/api/v1/tickets/{ref.ticket_id}/evidence/0", params={"mt": other_mt}).json() == FORBIDDEN


def test_kpis_and_status_and_metrics(client, runtime, auth_as):
    file_ticket(runtime)
    k = client.get("/api/v1/kpis", headers=auth_as("supervisor"))
    assert k.status_code == 200
    body = k.json()
    assert body["overall"]["cases"] == 1 and body["groups"][0]["key"] == "330199001001001" and body["groups"][0]["name"]
    assert client.get("/api/v1/kpis", headers=auth_as("worker_qh1")).status_code == 403
    assert client.get("/api/v1/status", headers=auth_as("operator")).status_code == 200
    m = client.get("/api/v1/metrics")
    assert m.status_code == 200
    assert 'gridwatch_tickets{status="reported"} 1.0' in m.text
    assert "gridwatch_queue_depth" in m.text and "gridwatch_http_requests_total" in m.text


def test_grids_geojson(client, auth_as):
    fc = client.get("/api/v1/grids", headers=auth_as("worker_qh1")).json()
    assert fc["type"] == "FeatureCollection"
    mine = {f["properties"]["code"] for f in fc["features"] if f["properties"]["mine"]}
    assert mine == {"330199001001001"}
    base = client.get("/api/v1/grids", params={"level": "grid"}, headers=auth_as("worker_qh1")).json()
    assert len(base["features"]) == 16 and all(len(f["properties"]["code"]) == 15 for f in base["features"])
