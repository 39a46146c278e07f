"""Review tiers over the API on a real runtime (real Redis, SQLite store, real intake): alerts are tickets,
activity is only recorded; filters, cursor pages, grid scope, the camera timeline and activity evidence."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ingest.anomaly import Anomaly, Evidence
from detectors.config import RuleConfig
from gw_support import CROSSING, PLAZA, snapshot
from tests.support import wait_for

pytestmark = pytest.mark.timeout(90)
FORBIDDEN = {"detail": "forbidden"}
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def _anomaly(rt, *, kind: str, tier: str, camera: str = "cam-plaza", where=PLAZA, at: datetime = T0,
             zone: str | None = "gate", details: dict | None = None, clip: bool = False) -> Anomaly:
    evidence = [snapshot(rt.evidence_dir)]
    if clip:
        name = f"clip-{uuid.uuid4().hex[:8]}.mp4"
        (rt.evidence_dir / name).write_bytes(b"\x00\x00\x00\x18ftypmp42")  # only served back, never decoded here
        evidence.append(Evidence(kind="clip", path=name, content_type="video/mp4"))
    return Anomaly(kind=kind, source="camera", source_id=camera, zone=zone, location=where, occurred_at=at,
                   score=0.8, title=f"{kind} at {camera}", tier=tier, evidence=evidence, details=details or {})


def _review(client, headers, **params) -> dict:
    r = client.get("/api/v1/review", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_rule_tiers_default_motion_to_activity_and_can_be_chosen():
    assert RuleConfig(kind="motion").tier == "activity"
    assert {RuleConfig(kind=k, zone=None).tier for k in ("intrusion", "loitering", "crowd", "fall", "fire_smoke",
                                                          "illegal_parking", "tamper")} == {"alert"}
    assert RuleConfig(kind="motion", tier="alert").tier == "alert"
    assert RuleConfig(kind="loitering", tier="activity").tier == "activity"
    with pytest.raises(ValueError):
        RuleConfig(kind="motion", tier="ticket")


def test_activity_is_recorded_with_evidence_and_makes_no_ticket(client, runtime, auth_as):
    op = auth_as("operator")
    cause = {"track_id": 7, "label": "person", "dwell_s": 42.0}
    motion = _anomaly(runtime, kind="motion", tier="activity", clip=True, details={"area": 0.03})
    ref = runtime.intake.file(motion)
    assert ref.ticket_id is None and ref.number is None
    # through the stream path too (what the video role does): acknowledged, still no ticket
    moved = _anomaly(runtime, kind="motion", tier="activity", at=T0 + timedelta(seconds=30))
    runtime.redis.xadd(runtime.keys.anomalies, moved.to_stream())
    wait_for(lambda: runtime.intake.process_batch(block_ms=100) >= 0 and
             len(_review(client, op, tier="activity")["items"]) == 2, timeout=20, what="the streamed activity")
    assert runtime.redis.xpending(runtime.keys.anomalies, "intake")["pending"] == 0
    assert client.get("/api/v1/tickets", headers=op).json()["total"] == 0
    assert client.get("/api/v1/wall", headers=op).json()["items"] == []

    alert = runtime.intake.file(_anomaly(runtime, kind="loitering", tier="alert", at=T0 + timedelta(seconds=60),
                                         details={"cause": cause}))
    assert alert.created and alert.number
    acts = _review(client, op, tier="activity")
    assert [i["id"].split(":")[0] for i in acts["items"]] == ["activity", "activity"] and acts["next"] is None
    newest, oldest = acts["items"]
    assert newest["at"] > oldest["at"]
    assert oldest == {**oldest, "tier": "activity", "camera_id": "cam-plaza", "grid": "330199001001001", "kind": "motion",
                      "ticket": None, "score": 0.8, "cause": {"area": 0.03}}
    snap = client.get(f"/api/v1{oldest['snapshot_url']}", headers=op)
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8" and snap.headers["content-type"] == "image/jpeg"
    clip = client.get(f"/api/v1{oldest['clip_url']}", headers=op)
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"

    alerts = _review(client, op, tier="alert")["items"]
    assert len(alerts) == 1
    item = alerts[0]
    assert item["id"] == f"alert:{alert.ticket_id}" and item["kind"] == "loitering" and item["cause"] == cause
    assert item["ticket"] == {"number": alert.number, "status": "reported"}
    assert client.get(f"/api/v1{item['snapshot_url']}", headers=op).status_code == 200
    assert item["snapshot_url"] == f"/tickets/{alert.ticket_id}/evidence/0" and item["clip_url"] is None
    # both tiers together, newest first
    assert [i["tier"] for i in _review(client, op)["items"]] == ["alert", "activity", "activity"]


def test_redelivered_activity_is_recorded_once(client, runtime, auth_as):
    a = _anomaly(runtime, kind="motion", tier="activity")
    runtime.intake.file(a)
    again = runtime.intake.file(a)
    assert again.duplicate
    assert len(_review(client, auth_as("admin"), tier="activity")["items"]) == 1


def test_filters(client, runtime, auth_as):
    rt = runtime
    rt.intake.file(_anomaly(rt, kind="motion", tier="activity", at=T0))
    park = rt.intake.file(_anomaly(rt, kind="illegal_parking", tier="alert", camera="cam-crossing", where=CROSSING,
                                   at=T0 + timedelta(minutes=1)))
    rt.intake.file(_anomaly(rt, kind="motion", tier="activity", camera="cam-crossing", where=CROSSING,
                            at=T0 + timedelta(minutes=2)))
    crowd = rt.intake.file(_anomaly(rt, kind="crowd", tier="alert", at=T0 + timedelta(minutes=3)))
    op = auth_as("operator")
    ids = lambda **p: [i["id"] for i in _review(client, op, **p)["items"]]  # noqa: E731
    crossing = ids(camera_id="cam-crossing")
    assert len(crossing) == 2 and crossing[0].startswith("activity:") and crossing[1] == f"alert:{park.ticket_id}"
    assert ids(camera_id="cam-crossing", tier="alert") == [f"alert:{park.ticket_id}"]
    assert ids(kind="crowd") == [f"alert:{crowd.ticket_id}"]
    assert len(ids(kind="motion")) == 2 and all(i.startswith("activity:") for i in ids(kind="motion"))
    assert ids(grid="330199002", tier="alert") == [f"alert:{park.ticket_id}"]
    assert len(ids(grid="330199002")) == 2
    # a ticket status selects alerts only: activity has no status
    assert ids(status="reported") == [f"alert:{crowd.ticket_id}", f"alert:{park.ticket_id}"]
    assert ids(status="dispatched") == []
    window = ids(since=(T0 + timedelta(minutes=1)).isoformat(), until=(T0 + timedelta(minutes=3)).isoformat())
    assert len(window) == 2 and window[1] == f"alert:{park.ticket_id}"
    for bad in ({"tier": "ticket"}, {"since": "yesterday"}, {"before": "not-a-cursor"}, {"limit": 0}):
        assert client.get("/api/v1/review", params=bad, headers=op).status_code == 422, bad


def test_cursor_pages_cover_everything_once_newest_first(client, runtime, auth_as):
    rt = runtime
    made = []
    for n in range(7):  # pairs at the same instant: the order must still be total
        at = T0 + timedelta(seconds=10 * (n // 2))
        tier = "alert" if n % 2 else "activity"
        a = _anomaly(rt, kind="intrusion" if tier == "alert" else "motion", tier=tier, at=at, zone=f"z{n}")
        rt.intake.file(a)
        made.append(a)
    op = auth_as("operator")
    seen, before, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"before": before} if before else {})}
        page = _review(client, op, **params)
        pages += 1
        assert len(page["items"]) <= 3
        seen += page["items"]
        before = page["next"]
        if before is None:
            break
    assert pages == 3 and len(seen) == 7 and len({i["id"] for i in seen}) == 7
    ats = [i["at"] for i in seen]
    assert ats == sorted(ats, reverse=True)
    # at one instant an alert sorts before the activity (newest first); made: activity, alert, activity, … 10 s apart per pair
    assert [i["tier"] for i in seen] == ["activity", "alert", "activity", "alert", "activity", "alert", "activity"]


def test_grid_workers_see_only_their_grids(client, runtime, auth_as):
    rt = runtime
    rt.intake.file(_anomaly(rt, kind="motion", tier="activity"))
    rt.intake.file(_anomaly(rt, kind="intrusion", tier="alert", at=T0 + timedelta(seconds=5)))
    mine = _review(client, auth_as("worker_qh1"))["items"]
    assert {i["tier"] for i in mine} == {"alert", "activity"} and {i["grid"] for i in mine} == {"330199001001001"}
    other = auth_as("worker_my4")
    assert _review(client, other)["items"] == []
    assert _review(client, other, grid="330199001001001")["items"] == []
    assert client.get("/api/v1/cameras/cam-plaza/timeline", headers=other).json() == FORBIDDEN  # not their camera
    assert client.get("/api/v1/cameras/cam-crossing/timeline", headers=other).json() == {"camera_id": "cam-crossing",
                                                                                     "items": []}
    activity = next(i for i in mine if i["tier"] == "activity")
    assert client.get(f"/api/v1{activity['snapshot_url']}", headers=other).json() == FORBIDDEN
    assert client.get("/api/v1/activity/987654/evidence/0", headers=other).json() == FORBIDDEN
    assert client.get("/api/v1/activity/987654/evidence/0", headers=auth_as("admin")).status_code == 404
    # media tokens work for <img>, and nothing works without credentials
    mt = client.post("/api/v1/auth/media-token", headers=auth_as("worker_qh1")).json()["media_token"]
    assert client.get(f"/api/v1{activity['snapshot_url']}", params={"mt": mt}).status_code == 200
    assert client.get("/api/v1/review").status_code == 401
    assert client.get("/api/v1/cameras/cam-plaza/timeline").status_code == 401


def test_camera_timeline_is_oldest_first_and_per_camera(client, runtime, auth_as):
    rt = runtime
    order = [("motion", "activity", 20), ("intrusion", "alert", 0), ("motion", "activity", 40), ("crowd", "alert", 30)]
    for kind, tier, s in order:
        rt.intake.file(_anomaly(rt, kind=kind, tier=tier, at=T0 + timedelta(seconds=s), zone=f"z{s}"))
    rt.intake.file(_anomaly(rt, kind="motion", tier="activity", camera="cam-crossing", where=CROSSING))
    body = client.get("/api/v1/cameras/cam-plaza/timeline", headers=auth_as("operator")).json()
    assert body["camera_id"] == "cam-plaza"
    assert [(i["kind"], i["at"]) for i in body["items"]] == [
        ("intrusion", "2026-12-01T08:00:00Z"), ("motion", "2026-12-01T08:00:20Z"),
        ("crowd", "2026-12-01T08:00:30Z"), ("motion", "2026-12-01T08:00:40Z")]
    windowed = client.get("/api/v1/cameras/cam-plaza/timeline", headers=auth_as("operator"),
                          params={"since": "2026-12-01T08:00:20+00:00", "until": "2026-12-01T08:00:40+00:00"}).json()
    assert [i["kind"] for i in windowed["items"]] == ["motion", "crowd"]


def test_dismissed_alert_still_teaches_suppression(client, runtime, auth_as):
    first = runtime.intake.file(_anomaly(runtime, kind="intrusion", tier="alert"))
    r = client.post(f"/api/v1/wall/{first.ticket_id}/dismiss", headers=auth_as("operator"), json={"note": "树影"})
    assert r.status_code == 200 and r.json()["status"] == "false_alarm"
    again = runtime.intake.file(_anomaly(runtime, kind="intrusion", tier="alert", at=datetime.now(timezone.utc)))
    assert again.suppressed and again.ticket_id is None
    item = _review(client, auth_as("operator"), tier="alert")["items"]
    assert [i["ticket"] for i in item] == [{"number": first.number, "status": "false_alarm"}]
