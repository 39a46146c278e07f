"""Redis killed (SIGKILL) and restarted in the middle of a load: no anomaly, ticket or duty entry lost or doubled.

Own redis-server with ``appendonly yes`` + ``appendfsync always`` in the test's temp dir (never the
system one). The intake runs in a thread exactly as in ``gateway.runtime`` (``run_forever``): Redis
errors are logged and retried with back-off. The producer retries its XADD like a publisher must;
a retry after a lost reply may duplicate the entry, which the intake files once.
"""
from __future__ import annotations

import time

import pytest

from tests.fault.support import IntakeRig, report, wait_for

pytestmark = pytest.mark.timeout(120)


def test_redis_sigkill_and_restart_mid_load(own_redis, prefix, tmp_path):
    rig = IntakeRig(own_redis.url, prefix, f"sqlite:///{tmp_path / 'cases.db'}", socket_timeout=2, socket_connect_timeout=1)
    intake = rig.intake("intake-1", claim_idle_s=1.0)
    producer = rig.producer
    total = 500
    try:
        rig.run_intake(intake)
        feeder = rig.feed(total, 250.0)
        wait_for(lambda: intake.stats["created"] >= 120, 60, "intake filed 120")
        created_at_kill = intake.stats["created"]
        own_redis.kill()
        down_at = time.monotonic()
        # Stay down long enough that both sides see errors and back off.
        wait_for(lambda: producer.retries >= 5, 20, "producer noticed the outage")
        own_redis.start()
        up_at = time.monotonic()
        feeder.join(60)
        assert not feeder.is_alive()
        rig.wait_filed(60)
        rig.wait_drained(30)
        recovered_s = time.monotonic() - up_at
        out = rig.ledger()
        report("redis SIGKILL + restart mid-load", sent=out["sent"], created_before_kill=created_at_kill,
               outage_s=round(up_at - down_at, 2), producer_retries=producer.retries, lost=out["lost_count"],
               occurrence_dupes=out["occurrence_dupes"], tickets=out["tickets"], duty_dupes=out["duty_dupes"],
               dispatched_without_duty=len(out["dispatched_without_duty_entry"]), drain_after_restart_s=round(recovered_s, 2))
        assert out["sent"] == total
        assert out["lost_count"] == 0, out["lost"]
        assert out["occurrence_dupes"] == 0
        assert out["tickets"] == total
        assert out["duty_dupes"] == 0
        assert out["dispatched_without_duty_entry"] == []
    finally:
        rig.close()
