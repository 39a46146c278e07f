"""Redis killed (SIGKILL) and restarted in the middle of a load: no anomaly, ticket or duty entry lost or doubled.

Own redis-server with ``appendonly yes`` + ``appendfsync always`` in the test's temp dir (never the
system one). The intake runs in a thread exactly as in ``gateway.runtime`` (``run_forever``): Redis
errors are logged and retried with back-off. The producer retries its XADD like a publisher must;
a retry after a lost reply may duplicate the entry, which the intake files once.
"""
from __future__ import annotations

import threading
import time

import pytest
import redis

from alerts.intake import Intake
from alerts.store import open_store
from alerts.streams import StreamKeys
from gateway.config import load_deployment
from tests.fault.support import Producer, ledger, report, wait_for

pytestmark = pytest.mark.timeout(120)


def test_redis_sigkill_and_restart_mid_load(own_redis, prefix, tmp_path):
    dep = load_deployment()
    dep.alerts.confirm_sources = []  # dispatch at once, so duty queues are part of what is checked
    from alerts.grids import load_grid_file

    grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
    store = open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    store.sync_grids(grids)
    keys = StreamKeys(prefix)
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2, socket_connect_timeout=1)
    intake = Intake(store, grids, dep.alerts, client, keys, consumer="intake-1", claim_idle_s=1.0)
    stop, stop_feed = threading.Event(), threading.Event()
    producer = Producer(own_redis.url, prefix)
    total = 500
    worker = threading.Thread(target=intake.run_forever, args=(stop, 200), daemon=True)
    feeder = threading.Thread(target=producer.run, args=(total, stop_feed, 250.0), daemon=True)
    try:
        worker.start()
        feeder.start()
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
        wait_for(lambda: ledger(store, keys, client, producer.sent)["lost_count"] == 0, 60, "every anomaly filed")
        wait_for(lambda: (lambda o: o["pending"] == 0 and o["lag"] == 0)(ledger(store, keys, client, producer.sent)),
                 30, "stream drained")
        recovered_s = time.monotonic() - up_at
        out = ledger(store, keys, client, producer.sent)
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
        stop_feed.set()
        stop.set()
        worker.join(15)
        store.close()
        client.close()
