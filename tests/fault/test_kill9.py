"""kill -9 of the intake process in the middle of a load: nothing lost, nothing filed twice.

The anomaly stream's pending entries of the dead consumer are re-claimed (XAUTOCLAIM) by its
successor, and intake is idempotent on the anomaly id, so an entry that was committed but not yet
acknowledged when the process died is recognised, not filed again; a dispatched ticket whose duty
entry had not been written yet gets it on redelivery. Real Redis (own server), real SQLite file.
"""
from __future__ import annotations

import time

import pytest

from tests.fault.support import IntakeProcess, IntakeRig, report, wait_for

pytestmark = pytest.mark.timeout(120)


def _filed(store) -> int:  # noqa: ANN001
    from sqlalchemy import func, select

    from alerts.models import Occurrence

    with store.read() as s:
        return int(s.scalar(select(func.count()).select_from(Occurrence)))


def test_kill9_intake_mid_load_loses_and_duplicates_nothing(own_redis, prefix, tmp_path):
    rig = IntakeRig(own_redis.url, prefix, f"sqlite:///{tmp_path / 'cases.db'}")
    store, keys, client = rig.store, rig.keys, rig.client
    total = 600
    first = IntakeProcess(own_redis.url, rig.sql_url, prefix, "intake-a", tmp_path / "a.log")
    second = IntakeProcess(own_redis.url, rig.sql_url, prefix, "intake-b", tmp_path / "b.log")
    try:
        first.start()
        feeder = rig.feed(total, 300.0)
        wait_for(lambda: _filed(store) >= 150, 60, "first intake filed 150")
        in_flight = client.xpending(keys.anomalies, "intake")["pending"]
        filed_at_kill = _filed(store)
        first.kill9()
        killed_at = time.monotonic()
        second.start()
        feeder.join(60)
        assert not feeder.is_alive()
        # Recovery: the dead consumer's pending entries are taken over and everything sent is filed.
        rig.wait_filed(60)
        wait_for(lambda: rig.ledger()["pending"] == 0, 30, "nothing left pending")
        recovery_s = time.monotonic() - killed_at

        # A producer re-sending the same anomalies (lost reply, retry): filed once.
        for eid, fields in client.xrange(keys.anomalies, count=50):
            client.xadd(keys.anomalies, fields)
        rig.wait_drained(30)
        out = rig.ledger()
        report("kill -9 intake mid-load", sent=out["sent"], filed_at_kill=filed_at_kill, in_flight_at_kill=in_flight,
               lost=out["lost_count"], occurrence_dupes=out["occurrence_dupes"], tickets=out["tickets"],
               duty_dupes=out["duty_dupes"], dispatched_without_duty=len(out["dispatched_without_duty_entry"]),
               recovery_s=round(recovery_s, 2))
        assert out["sent"] == total
        assert out["lost_count"] == 0, out["lost"]
        assert out["occurrence_dupes"] == 0
        assert out["tickets"] == total  # every anomaly is its own case (distinct zones)
        assert out["duty_dupes"] == 0
        assert out["dispatched_without_duty_entry"] == []
    finally:
        rig.stop_feed.set()
        first.stop()
        second.stop()
        rig.close()
