"""Kill points inside every write after the press: intake, sign-for on a duty queue, SLA escalation, notify.

Each test runs the real part in a process of its own (the same class ``gridwatch run`` runs in a
thread), arms one fail point (ingest/failpoints.py) so the process SIGKILLs itself in the middle of
the write under load, restarts it without the fail point, and checks what a user would: no alarm,
ticket, duty entry or notification lost, none duplicated. Redis is the test's own (AOF, everysec, as
``gridwatch run`` runs it); the store is a real SQLite file.
"""
from __future__ import annotations

import threading

import pytest
import redis

from alerts.store import open_store
from alerts.streams import StreamKeys
from tests.fault.support import IntakeProcess, Producer, ledger, report, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("point", ["intake.after_commit@80", "intake.before_xack@80"])
def test_intake_killed_between_commit_and_queue_loses_and_duplicates_nothing(point, own_redis, prefix, tmp_path):
    """After the SQL commit and before the duty-queue XADD + XACK (one MULTI): the successor re-claims the entry,
    recognises the filed anomaly, and puts its dispatched ticket on the duty queue exactly once."""
    sql = f"sqlite:///{tmp_path / 'cases.db'}"
    store = open_store(sql)
    keys = StreamKeys(prefix)
    client = redis.Redis.from_url(own_redis.url)
    producer = Producer(own_redis.url, prefix)
    stop = threading.Event()
    total = 300
    first = IntakeProcess(own_redis.url, sql, prefix, "intake-a", tmp_path / "a.log", failpoint=point)
    second = IntakeProcess(own_redis.url, sql, prefix, "intake-b", tmp_path / "b.log")
    feeder = threading.Thread(target=producer.run, args=(total, stop, 400.0), daemon=True)
    try:
        first.start()
        feeder.start()
        assert first.wait_killed(60) == -9
        at_kill = ledger(store, keys, client, producer.sent)
        second.start()
        feeder.join(60)
        wait_for(lambda: ledger(store, keys, client, producer.sent)["lost_count"] == 0, 60, "every anomaly filed")
        wait_for(lambda: (lambda o: o["pending"] == 0 and o["lag"] == 0)(ledger(store, keys, client, producer.sent)),
                 30, "nothing left pending")
        out = ledger(store, keys, client, producer.sent)
        report(f"kill at {point}", sent=out["sent"], filed_at_kill=at_kill["filed"],
               dispatched_without_duty_at_kill=len(at_kill["dispatched_without_duty_entry"]), lost=out["lost_count"],
               occurrence_dupes=out["occurrence_dupes"], duty_dupes=out["duty_dupes"],
               dispatched_without_duty=len(out["dispatched_without_duty_entry"]))
        assert at_kill["dispatched_without_duty_entry"] != []      # the kill really left a ticket off its queue …
        assert out["sent"] == total and out["lost_count"] == 0 and out["occurrence_dupes"] == 0
        assert out["tickets"] == total and out["duty_dupes"] == 0
        assert out["dispatched_without_duty_entry"] == []          # … and the successor repaired it, once
    finally:
        stop.set()
        first.stop()
        second.stop()
        store.close()
        client.close()
