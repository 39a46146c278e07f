"""Every path of the case workflow through CaseService, on SQLite and PostgreSQL, and the illegal moves."""
from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.lifecycle import ACTIONS, OPEN, TransitionError, allowed_actions
from alerts.service import NotVisible, TicketNotFound
from tests.alerts.helpers import CROSSING, anomaly

pytestmark = pytest.mark.timeout(60)
WORKER = dict(role="grid_worker")


def new_ticket(intake, **kw) -> int:
    return intake.file(anomaly(**kw)).ticket_id


def actions_of(t: dict) -> list[str]:
    return [h["action"] for h in t["history"]]


def test_full_path_to_rating(intake, service, clock):
    tid = new_ticket(intake)
    t = service.get_ticket(tid)
    assert t["status"] == "dispatched" and t["number"].startswith("QS20261124-")
    clock.advance(minutes=2)
    t = service.transition(tid, "sign", "worker_qh1", "收到", **WORKER)
    assert t["status"] == "signed" and t["assignee"] == "worker_qh1" and not t["sign_overdue"]
    t = service.transition(tid, "start", "worker_qh1", **WORKER)
    clock.advance(minutes=20)
    t = service.transition(tid, "feedback", "worker_qh1", "已疏散", ["photos/after.jpg"], **WORKER)
    assert t["status"] == "feedback"
    t = service.transition(tid, "verify", "dispatcher", role="dispatcher")
    t = service.transition(tid, "close", "dispatcher", role="dispatcher")
    assert t["status"] == "closed" and t["closed_at"]
    t = service.transition(tid, "rate", "resident-1", "很快", role="resident", score=5)
    assert t["status"] == "rated" and t["ratings"][0]["satisfied"]
    assert actions_of(t) == ["create", "dispatch", "sign", "start", "feedback", "verify", "close", "rate"]
    fb = next(h for h in t["history"] if h["action"] == "feedback")
    assert fb["attachments"] == ["photos/after.jpg"] and (fb["from"], fb["to"]) == ("handling", "feedback")
    assert service.allowed_actions(t, "dispatcher") == ["comment"]


def test_rework_path(intake, service):
    tid = new_ticket(intake)
    for a in ("sign", "start", "feedback"):
        service.transition(tid, a, "w", **WORKER)
    with pytest.raises(ValueError, match="reason"):
        service.transition(tid, "rework", "d", role="dispatcher")
    t = service.transition(tid, "rework", "d", "现场仍有人员聚集", role="dispatcher")
    assert t["status"] == "handling" and t["rework_count"] == 1
    t = service.transition(tid, "feedback", "w", **WORKER)
    t = service.transition(tid, "verify", "d", role="supervisor")
    assert t["status"] == "verified"


def test_extension_request_approve_and_deny(intake, service, clock):
    tid = new_ticket(intake)
    t = service.transition(tid, "sign", "w", **WORKER)
    old = t["handle_deadline"]
    with pytest.raises(TransitionError, match="no extension was requested"):
        service.transition(tid, "approve_extension", "d", role="dispatcher")
    t = service.transition(tid, "request_extension", "w", "需要协调物业", hours=24, **WORKER)
    assert t["extension_requested"]
    with pytest.raises(TransitionError, match="pending"):
        service.transition(tid, "request_extension", "w", "again", hours=2, **WORKER)
    assert "approve_extension" in service.allowed_actions(t, "grid_leader")
    t = service.transition(tid, "approve_extension", "leader", role="grid_leader")
    assert t["extension_count"] == 1 and t["extension_requested"] is None and t["handle_deadline"] > old
    t = service.transition(tid, "request_extension", "w", "再延期", deadline=(clock() + timedelta(days=5)).isoformat(), **WORKER)
    t = service.transition(tid, "deny_extension", "leader", "不予延期", role="grid_leader")
    assert t["extension_count"] == 1 and t["extension_requested"] is None
    assert [h["action"] for h in t["history"]][-4:] == ["request_extension", "approve_extension", "request_extension", "deny_extension"]


def test_return_to_dispatcher_and_redispatch(intake, service, redis_client, keys):
    tid = new_ticket(intake)
    t = service.transition(tid, "return", "worker_qh1", "不属于本网格", **WORKER)
    assert t["status"] == "registered"
    t = service.transition(tid, "dispatch", "dispatcher", "改派明月南4网格", role="dispatcher", unit_code="330199002002004")
    assert t["status"] == "dispatched" and t["unit_code"] == "330199002002004"
    entries = redis_client.xrange(keys.duty("330199002002004"))
    assert [int(f[b"ticket_id"]) for _, f in entries] == [tid]
    with pytest.raises(ValueError, match="unknown unit_code"):
        t2 = new_ticket(intake, source_id="cam-x", at=CROSSING)
        service.transition(t2, "return", "w", "no", **WORKER)
        service.transition(t2, "dispatch", "d", role="dispatcher", unit_code="999")


def test_supervise_remind_comment_keep_state(intake, service):
    tid = new_ticket(intake)
    t = service.transition(tid, "supervise", "sup", "重点督办", role="supervisor")
    assert t["supervised"] and t["status"] == "dispatched"
    t = service.transition(tid, "remind", "d", "请尽快签收", role="dispatcher")
    t = service.transition(tid, "comment", "operator", "现场视频已调阅", role="operator")
    assert t["reminders"] == 1 and t["status"] == "dispatched"


def test_void_needs_reason(intake, service):
    tid = new_ticket(intake)
    with pytest.raises(ValueError, match="reason"):
        service.transition(tid, "void", "d", role="dispatcher")
    t = service.transition(tid, "void", "d", "重复录入", role="dispatcher")
    assert t["status"] == "void"
    with pytest.raises(TransitionError) as err:
        service.transition(tid, "sign", "w", **WORKER)
    assert "'void'" in str(err.value) and "'sign'" in str(err.value) and "comment" in str(err.value)


def test_false_alarm_teaches_suppression(intake, service, clock):
    tid = new_ticket(intake)
    t = service.transition(tid, "false_alarm", "operator", "树影晃动", role="operator")
    assert t["status"] == "false_alarm"
    clock.advance(minutes=10)
    again = intake.file(anomaly(occurred_at=clock()))
    assert again.suppressed and again.ticket_id is None
    other_zone = intake.file(anomaly(zone="gate", occurred_at=clock()))
    assert other_zone.created
    clock.advance(hours=2)                          # the suppression (1 h default) has run out
    assert intake.file(anomaly(occurred_at=clock())).created


def test_confirmation_flow_for_operator(store, grids, alerts_cfg, redis_client, keys, clock, service):
    from alerts.intake import Intake

    cfg = alerts_cfg.model_copy(update={"confirm_sources": ["camera"]})
    intake = Intake(store, grids, cfg, redis_client, keys, "c", clock=clock)
    tid = intake.file(anomaly()).ticket_id
    t = service.get_ticket(tid)
    assert t["status"] == "reported" and t["sign_deadline"] is None
    assert redis_client.exists(keys.duty("330199001001001")) == 0
    assert service.allowed_actions(t, "operator") == ["register", "comment", "false_alarm"]
    t = service.transition(tid, "register", "operator", "确认", role="operator")
    assert t["status"] == "dispatched" and t["sign_deadline"]
    assert redis_client.xlen(keys.duty("330199001001001")) == 1


def test_emergency_category_skips_confirmation_while_others_wait(store, grids, alerts_cfg, redis_client, keys, clock, service):
    """The demo's policy: camera events wait for an operator, but fire (confirm: false) is dispatched at once."""
    from alerts.intake import Intake

    cfg = alerts_cfg.model_copy(update={"confirm_sources": ["camera"]})
    intake = Intake(store, grids, cfg, redis_client, keys, "c", clock=clock)
    fire = service.get_ticket(intake.file(anomaly(kind="fire_smoke", zone=None)).ticket_id)
    crowd = service.get_ticket(intake.file(anomaly(kind="crowd")).ticket_id)
    assert fire["category"] == "0301" and fire["status"] == "dispatched" and fire["sign_deadline"]
    assert crowd["status"] == "reported"
    queued = [f[b"ticket_id"].decode() for _, f in redis_client.xrange(keys.duty("330199001001001"))]
    assert queued == [str(fire["id"])]


@pytest.mark.parametrize("status", sorted(OPEN | {"closed", "rated", "void", "false_alarm", "merged"}))
def test_every_illegal_action_is_refused_with_the_allowed_ones(status):
    from alerts.models import Ticket
    from alerts.policy import CasePolicy
    from alerts.config import AlertsConfig
    from alerts.lifecycle import apply
    from datetime import datetime, timezone

    policy = CasePolicy(AlertsConfig())
    now = datetime(2026, 11, 24, 2, tzinfo=timezone.utc)
    for name, spec in ACTIONS.items():
        if status in spec.sources:
            continue
        t = Ticket(id=1, status=status, category="0101", extension_requested=None)
        with pytest.raises(TransitionError) as err:
            apply(t, name, "x", now, policy, note="n")
        assert err.value.state == status and err.value.action == name
        assert err.value.allowed == sorted(allowed_actions(status))
        assert t.status == status


def test_roles_are_enforced(intake, service):
    tid = new_ticket(intake)
    with pytest.raises(TransitionError, match="role 'operator' may not"):
        service.transition(tid, "sign", "op", role="operator")
    assert "sign" in service.allowed_actions(tid, "grid_worker")
    assert "sign" not in service.allowed_actions(tid, "supervisor")
    with pytest.raises(TransitionError, match="no such action"):
        service.transition(tid, "teleport", "x", role="admin")


def test_visibility_and_lookup(intake, service):
    tid = new_ticket(intake)
    number = service.get_ticket(tid)["number"]
    assert service.get_ticket(number)["id"] == tid
    with pytest.raises(NotVisible):
        service.get_ticket(tid, grids=["330199002"])
    with pytest.raises(NotVisible):
        service.transition(tid, "sign", "w", grids=["330199002002004"], **WORKER)
    with pytest.raises(TicketNotFound):
        service.get_ticket(999999)
    assert service.list_tickets(grids=["330199001001"]).total == 1
    assert service.list_tickets(grids=["330199002"]).total == 0
    assert service.list_tickets(grids=[]).total == 0


def test_list_filters_and_paging(intake, service, clock):
    ids = [new_ticket(intake, source_id=f"cam-{i}", occurred_at=clock()) for i in range(5)]
    new_ticket(intake, kind="fire_smoke", source_id="cam-garages", zone=None, at=CROSSING)
    assert service.list_tickets().total == 6
    page = service.list_tickets(limit=2, offset=1)
    assert [t["id"] for t in page.items] == [ids[4], ids[3]] and page.total == 6
    assert service.list_tickets(category="0301").total == 1
    assert service.list_tickets(category="03").total == 1
    service.transition(ids[0], "sign", "w", **WORKER)
    assert service.list_tickets(status="signed").total == 1
    assert service.list_tickets(since=clock() + timedelta(seconds=1)).total == 0
    assert service.list_tickets(text="火情").total == 1
    q = service.queue_for(["330199001001001"])
    assert {t["id"] for t in q} == set(ids)
