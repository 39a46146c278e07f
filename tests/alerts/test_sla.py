"""Reminders and escalation: a fake-clock walk up the hierarchy, restart durability, and a real short-deadline run."""
from __future__ import annotations

import threading

import pytest

from alerts.config import TimeLimit
from alerts.intake import Intake
from alerts.queues import DutyQueue
from alerts.roster import Roster, parse_days
from alerts.sla import Escalator
from tests.alerts.helpers import anomaly, poll

pytestmark = pytest.mark.timeout(60)


def test_missed_sign_for_escalates_up_the_chain(intake, service, store, grids, alerts_cfg, redis_client, keys, clock):
    esc = Escalator(store, grids, alerts_cfg, redis_client, keys, clock=clock)
    tid = intake.file(anomaly()).ticket_id           # crowd: sign within 10 minutes, remind at 80 %
    assert esc.scan() == {"reminded": 0, "escalated": 0}
    clock.advance(minutes=8, seconds=1)
    assert esc.scan() == {"reminded": 1, "escalated": 0}
    clock.advance(minutes=2)
    assert esc.scan()["escalated"] == 1
    t = service.get_ticket(tid)
    assert (t["unit_code"], t["escalation_level"], t["sign_overdue"], t["status"]) == ("330199001001", 1, True, "dispatched")
    esc_h = [h for h in t["history"] if h["action"] == "escalate"][0]
    assert esc_h["data"]["to_unit"] == "330199001001" and esc_h["data"]["notify"] == ["leader_qhb"]
    # the community's duty queue has it, the grid's entry is done
    assert [int(f[b"ticket_id"]) for _, f in redis_client.xrange(keys.duty("330199001001"))] == [tid]
    ev = [f[b"type"] for _, f in redis_client.xrange(keys.events)]
    assert ev.count(b"ticket.remind") == 1 and ev.count(b"ticket.escalate") == 1
    clock.advance(minutes=11)
    esc.scan()
    clock.advance(minutes=11)
    esc.scan()
    t = service.get_ticket(tid)
    assert (t["unit_code"], t["escalation_level"]) == ("330199", 3)   # street, then district
    clock.advance(minutes=11)
    esc.scan()
    t = service.get_ticket(tid)
    assert t["supervised"] and t["escalation_level"] == 3               # top of the chain: overdue, supervised
    clock.advance(hours=5)
    assert esc.scan() == {"reminded": 0, "escalated": 0}
    # the district signs late: on the record
    t = service.transition(tid, "sign", "dispatcher", role="admin")
    assert t["sign_overdue"] and t["status"] == "signed"


def test_missed_handling_deadline_escalates(intake, service, store, grids, alerts_cfg, redis_client, keys, clock):
    esc = Escalator(store, grids, alerts_cfg, redis_client, keys, clock=clock)
    tid = intake.file(anomaly()).ticket_id
    service.transition(tid, "sign", "w", role="grid_worker")
    clock.advance(hours=2, minutes=1)               # crowd: handle within 2 hours
    esc.scan()
    t = service.get_ticket(tid)
    assert t["handle_overdue"] and t["unit_code"] == "330199001001" and t["status"] == "signed"
    t = service.transition(tid, "feedback", "w", role="grid_worker")
    assert t["handle_overdue"]


def test_escalation_is_durable_across_a_restart(intake, service, store, grids, alerts_cfg, redis_client, keys, clock):
    tid = intake.file(anomaly()).ticket_id
    clock.advance(hours=1)                          # nothing ran while it went overdue
    fresh = Escalator(store, grids, alerts_cfg, redis_client, keys, clock=clock)   # a new process
    assert fresh.scan()["escalated"] == 1
    assert service.get_ticket(tid)["escalation_level"] == 1


def test_real_short_deadline_run(store, grids, alerts_cfg, redis_client, keys, service):
    """Real clock, real Redis: a 1-second sign-for limit, the SLA loop in a thread, the community's queue reader."""
    cats = [c.model_copy(update={"sign_within": TimeLimit(amount=1 / 60, unit="minutes")}) if c.code == "0202" else c
            for c in alerts_cfg.categories]
    cfg = alerts_cfg.model_copy(update={"categories": cats})
    store.sync_grids(grids)
    intake = Intake(store, grids, cfg, redis_client, keys, "c")
    esc = Escalator(store, grids, cfg, redis_client, keys)
    community = DutyQueue(redis_client, keys, "330199001001", "leader-page", store=store, claim_idle_s=30)
    stop = threading.Event()
    th = threading.Thread(target=esc.run_forever, args=(stop, 0.1), daemon=True)
    th.start()
    try:
        tid = intake.file(anomaly()).ticket_id
        entries = poll(lambda: community.read(block_ms=100), timeout=10)
        assert entries[0].ticket_id == tid and entries[0].reason == "escalated"
        t = service.get_ticket(tid)
        assert t["sign_overdue"] and t["unit_code"] == "330199001001"
        t = community.sign(entries[0], service, "leader_qhb", role="grid_leader")
        assert t["status"] == "signed"
        assert community.pending_count() == 0
    finally:
        stop.set()
        th.join(timeout=5)


def test_roster():
    from datetime import datetime, timezone
    from alerts.config import DutyShift

    r = Roster([DutyShift(grid="330199001001001", user="day", start="08:00", end="20:00", days="mon-fri"),
                DutyShift(grid="330199001001001", user="night", start="20:00", end="08:00"),
                DutyShift(grid="330199", user="desk")])
    tue_noon = datetime(2026, 11, 24, 4, tzinfo=timezone.utc)        # 12:00 Shanghai
    tue_late = datetime(2026, 11, 24, 15, tzinfo=timezone.utc)       # 23:00
    wed_early = datetime(2026, 11, 24, 21, tzinfo=timezone.utc)      # Wed 05:00
    assert r.users("330199001001001", tue_noon) == ["day"]
    assert r.users("330199001001001", tue_late) == ["night"]
    assert r.users("330199001001001", wed_early) == ["night"]
    assert r.users("330199002002004", tue_noon) == ["desk"]          # nobody there: the nearest level up
    assert parse_days("fri-mon") == {4, 5, 6, 0} and parse_days("sat,sun") == {5, 6}
    with pytest.raises(ValueError, match="unknown day"):
        parse_days("mon-fry")
