"""The SQL store goes away for a while (PostgreSQL closed to connections, every session cut) under load.

The intake must not acknowledge an anomaly it could not commit, must not burn CPU or flood the log
while the store is away, and must resume by itself — within seconds of the store's return, not
after the re-claim idle time meant for dead consumers. Real PostgreSQL (a database of the test's
own, closed with ``ALLOW_CONNECTIONS false`` + ``pg_terminate_backend``), real Redis (own server).
"""
from __future__ import annotations

import threading
import time

import pytest
import redis

from alerts.grids import load_grid_file
from alerts.intake import INTAKE_GROUP, Intake
from alerts.store import open_store
from alerts.streams import StreamKeys
from gateway.config import load_deployment
from tests.fault.support import PgDatabase, Producer, ledger, report, wait_for

pytestmark = pytest.mark.timeout(150)


def _acked(client: redis.Redis, keys: StreamKeys) -> int:
    info = {g["name"].decode(): g for g in client.xinfo_groups(keys.anomalies)}[INTAKE_GROUP]
    return int(client.xlen(keys.anomalies)) - int(info["pending"]) - int(info["lag"] or 0)


def test_postgres_outage_nothing_acked_uncommitted_and_intake_resumes(own_redis, prefix):
    db = PgDatabase()
    dep = load_deployment()
    dep.alerts.confirm_sources = []  # dispatch at once, so duty queues are part of what is checked
    grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
    store = open_store(db.url)
    store.sync_grids(grids)
    keys = StreamKeys(prefix)
    client = redis.Redis.from_url(own_redis.url)
    # The production default re-claim idle time (30 s): recovery must not wait for it.
    intake = Intake(store, grids, dep.alerts, client, keys, consumer="intake-pg")
    assert intake.claim_idle_ms >= 30_000
    stop, stop_feed = threading.Event(), threading.Event()
    producer = Producer(own_redis.url, prefix)
    total = 400
    worker = threading.Thread(target=intake.run_forever, args=(stop, 200), daemon=True)
    feeder = threading.Thread(target=producer.run, args=(total, stop_feed, 100.0), daemon=True)
    try:
        worker.start()
        feeder.start()
        wait_for(lambda: intake.stats["created"] >= 60, 60, "intake filed 60 before the outage")
        db.close_to_connections()
        down_at = time.monotonic()
        acked_at_outage = _acked(client, keys)
        wait_for(lambda: len(producer.sent) >= 250, 60, "load continued during the outage")
        acked_during = _acked(client, keys) - acked_at_outage
        pending_during = client.xpending(keys.anomalies, INTAKE_GROUP)["pending"]
        created_before_return = intake.stats["created"]
        db.reopen()
        up_at = time.monotonic()
        wait_for(lambda: intake.stats["created"] > created_before_return, 30, "first commit after the store returned")
        first_commit_s = time.monotonic() - up_at
        feeder.join(60)
        assert not feeder.is_alive()
        wait_for(lambda: ledger(store, keys, client, producer.sent)["lost_count"] == 0, 90, "every anomaly filed")
        resumed_s = time.monotonic() - up_at
        wait_for(lambda: (lambda o: o["pending"] == 0 and o["lag"] == 0)(ledger(store, keys, client, producer.sent)),
                 30, "stream drained")
        out = ledger(store, keys, client, producer.sent)
        report("postgresql outage under load", sent=out["sent"], outage_s=round(up_at - down_at, 2),
               acked_during_outage=acked_during, pending_during_outage=pending_during, lost=out["lost_count"],
               occurrence_dupes=out["occurrence_dupes"], tickets=out["tickets"], duty_dupes=out["duty_dupes"],
               first_commit_after_return_s=round(first_commit_s, 2), all_filed_after_return_s=round(resumed_s, 2))
        # In the worst case one commit was in flight when the sessions were cut: at most that one can be acked
        # during the outage (its COMMIT landed); nothing uncommitted may be (lost == 0 proves it).
        assert acked_during <= intake.batch
        assert out["lost_count"] == 0, out["lost"]
        assert out["occurrence_dupes"] == 0 and out["duty_dupes"] == 0
        assert out["tickets"] == total
        assert first_commit_s < 6, f"intake took {first_commit_s:.1f}s to resume after the store came back"
    finally:
        stop_feed.set()
        stop.set()
        worker.join(15)
        store.close()
        client.close()
        db.drop()
