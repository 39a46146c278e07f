"""Wall-clock jumps (NTP step, a wrong RTC corrected): escalations neither fire early nor get lost nor fire twice.

The SLA timer keeps no timers in memory: every open ticket carries absolute ``remind_at`` /
``escalate_at`` in the store and each scan compares them with the (injectable) clock. The scan loop
waits on a monotonic timer (``Event.wait``), so a backward jump never stalls it. Real Redis, real
SQLite and PostgreSQL store (the alerts fixtures).
"""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from alerts.models import Ticket
from alerts.sla import Escalator
from tests.alerts.helpers import anomaly, poll

pytestmark = pytest.mark.timeout(60)

from tests.alerts.conftest import alerts_cfg, clock, demo, grids, intake, keys, store  # noqa: E402,F401


def _ticket(store, tid):  # noqa: ANN001, ANN202
    with store.read() as s:
        return s.get(Ticket, tid)


def test_backward_and_forward_jumps_fire_each_escalation_once(store, intake, grids, alerts_cfg, redis_client, keys, clock):
    alerts_cfg.confirm_sources = []  # dispatched at once: the sign-for clock starts (the demo may hold camera cases for 立案)
    esc = Escalator(store, grids, alerts_cfg, redis_client, keys, clock=clock)
    ref = intake.file(anomaly())  # crowd at the plaza: sign within 10 minutes
    t = _ticket(store, ref.ticket_id)
    due, start = t.escalate_at, clock.now
    assert due is not None and due > start

    clock.now = start - timedelta(days=1)                 # the clock steps back a day
    assert esc.scan() == {"reminded": 0, "escalated": 0}
    clock.now = due - timedelta(seconds=1)                # just before the deadline (the reminder is due by now)
    assert esc.scan()["escalated"] == 0
    clock.now = due + timedelta(seconds=1)
    assert esc.scan()["escalated"] == 1
    assert esc.scan()["escalated"] == 0                   # not twice
    first = _ticket(store, ref.ticket_id)
    clock.now = start - timedelta(hours=2)                # back again: nothing is undone or redone
    assert esc.scan() == {"reminded": 0, "escalated": 0}
    clock.now = due + timedelta(seconds=2)
    assert esc.scan()["escalated"] == 0
    assert _ticket(store, ref.ticket_id).unit_code == first.unit_code

    # A forward step of three days: one level per elapsed deadline, not a cascade to the top in one scan.
    clock.now = due + timedelta(days=3)
    assert esc.scan()["escalated"] == 1
    assert esc.scan()["escalated"] == 0
    after = _ticket(store, ref.ticket_id)
    assert after.escalation_level == first.escalation_level + 1
    assert after.escalate_at > clock.now


def test_scan_loop_survives_a_backward_jump_and_acts_when_time_comes(store, intake, grids, alerts_cfg, redis_client,
                                                                     keys, clock):
    alerts_cfg.confirm_sources = []  # dispatched at once: the sign-for clock starts (the demo may hold camera cases for 立案)
    esc = Escalator(store, grids, alerts_cfg, redis_client, keys, clock=clock)
    ref = intake.file(anomaly())
    due = _ticket(store, ref.ticket_id).escalate_at
    clock.now = clock.now - timedelta(days=30)
    stop = threading.Event()
    th = threading.Thread(target=esc.run_forever, args=(stop, 0.05), daemon=True)
    th.start()
    try:
        clock.now = due + timedelta(seconds=1)
        poll(lambda: _ticket(store, ref.ticket_id).sign_overdue, timeout=5)
        level = _ticket(store, ref.ticket_id).escalation_level
        clock.now = due - timedelta(hours=5)              # and back again while the loop runs
        poll(lambda: th.is_alive(), timeout=1)
        assert _ticket(store, ref.ticket_id).escalation_level == level
    finally:
        stop.set()
        th.join(5)
    assert not th.is_alive()
