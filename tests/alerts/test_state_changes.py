"""Every change of a ticket's status or unit goes through alerts.lifecycle, so its rules and its history hold on
each path: creation (intake, a split), merge and unmerge (the case service), the escalator's change of unit."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alerts import lifecycle
from alerts.config import AlertsConfig
from alerts.lifecycle import TransitionError
from alerts.models import Ticket
from alerts.policy import CasePolicy
from alerts.sla import Escalator
from tests.alerts.helpers import anomaly

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2026, 11, 24, 2, tzinfo=timezone.utc)


def _rows(t: dict) -> list[tuple[str, str | None, str]]:
    return [(h["action"], h["from"], h["to"]) for h in t["history"]]


def test_a_new_ticket_is_reported_then_dispatched_with_history(intake, service):
    t = service.get_ticket(intake.file(anomaly()).ticket_id)
    assert _rows(t) == [("create", None, "reported"), ("dispatch", "reported", "dispatched")]
    assert t["history"][1]["data"] == {"unit_code": "330199001001001"} and t["sign_deadline"] is not None


def test_a_ticket_an_operator_must_confirm_stays_reported(intake, service):
    intake.cfg.confirm_sources = ["camera"]
    t = service.get_ticket(intake.file(anomaly()).ticket_id)
    assert t["status"] == "reported" and _rows(t) == [("create", None, "reported")] and t["sign_deadline"] is None


def test_create_refuses_a_ticket_that_exists():
    t = Ticket(id=1, status="dispatched", category="0101")
    with pytest.raises(TransitionError, match="exists already"):
        lifecycle.create(t, NOW, CasePolicy(AlertsConfig()), confirm=False, unit_name="x")
    assert t.status == "dispatched"


def test_a_split_off_occurrence_opens_its_ticket_through_the_lifecycle(intake, service, clock):
    first = intake.file(anomaly(occurred_at=clock()))
    intake.file(anomaly(occurred_at=clock()))                       # merges: two occurrences
    occ = service.get_ticket(first.ticket_id)["occurrences"][1]["id"]
    new = service.split_occurrence(occ, "dispatcher1", "另一事件", role="dispatcher")
    assert _rows(new)[:2] == [("create", None, "reported"), ("dispatch", "reported", "dispatched")]
    assert new["history"][0]["actor"] == "dispatcher1"


def test_merge_and_unmerge_write_history_on_both_tickets(intake, service):
    a = intake.file(anomaly(source_id="cam-a")).ticket_id
    b = intake.file(anomaly(source_id="cam-b")).ticket_id
    service.merge(b, a, "dispatcher1", "同一事件", role="dispatcher")
    src, dst = service.get_ticket(b), service.get_ticket(a)
    assert _rows(src)[-1] == ("merge", "dispatched", "merged") and src["history"][-1]["data"]["into"] == a
    assert _rows(dst)[-1] == ("merge_in", "dispatched", "dispatched") and dst["history"][-1]["data"]["from"] == b
    service.unmerge(b, "dispatcher1", "并非同一事件", role="dispatcher")
    src, dst = service.get_ticket(b), service.get_ticket(a)
    assert _rows(src)[-1] == ("unmerge", "merged", "dispatched") and src["sign_deadline"] is not None
    assert _rows(dst)[-1] == ("unmerge_out", "dispatched", "dispatched")


def test_merge_rules_hold_in_the_state_machine_itself():
    policy = CasePolicy(AlertsConfig())
    src = Ticket(id=1, number="A", status="closed", category="0101")
    dst = Ticket(id=2, number="B", status="dispatched", category="0101")
    with pytest.raises(TransitionError, match="A is not open"):
        lifecycle.merge(src, dst, "d", NOW, policy)
    with pytest.raises(TransitionError, match="role 'grid_worker' may not"):
        lifecycle.merge(dst, src, "w", NOW, policy, role="grid_worker")
    with pytest.raises(TransitionError, match="it is not merged"):
        lifecycle.unmerge(dst, src, "d", NOW, policy)
    assert (src.status, dst.status) == ("closed", "dispatched")


def test_escalation_moves_the_unit_through_the_state_machine(intake, service, store, grids, alerts_cfg, redis_client,
                                                              keys, clock):
    esc = Escalator(store, grids, alerts_cfg, redis_client, keys, clock=clock)
    tid = intake.file(anomaly()).ticket_id
    clock.advance(minutes=11)                                       # crowd: sign within 10 minutes
    assert esc.scan()["escalated"] == 1
    t = service.get_ticket(tid)
    row = [h for h in t["history"] if h["action"] == "escalate"][0]
    assert (row["from"], row["to"]) == ("dispatched", "dispatched")
    assert (row["data"]["from_unit"], row["data"]["to_unit"]) == ("330199001001001", "330199001001") == \
        ("330199001001001", t["unit_code"])


def test_escalate_refused_by_the_state_machine_leaves_the_unit_alone():
    t = Ticket(id=1, status="verified", category="0101", unit_code="330199001001001", escalation_level=0,
               extension_requested=None)
    with pytest.raises(TransitionError):
        lifecycle.apply(t, "escalate", "system", NOW, CasePolicy(AlertsConfig()), unit_code="330199001001", level_index=1)
    assert (t.unit_code, t.escalation_level) == ("330199001001001", 0)
