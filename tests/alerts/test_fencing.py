"""Fencing at intake (alerts.fencing) with the real pool leases in the real Redis: an anomaly that reaches the stream
after its camera's lease was granted to a newer owner is rejected and counted; one that was on the stream before the
takeover is filed (never lost for being late); unfenced sources are untouched."""
from __future__ import annotations

import pytest

from alerts.intake import INTAKE_GROUP
from alerts.streams import publish_anomaly
from ingest.anomaly import FenceStamp
from detectors.pool_keys import PoolKeys
from detectors.pool_store import PoolStore, board
from tests.alerts.helpers import anomaly
from tests.support import wait_for

pytestmark = pytest.mark.timeout(60)


def _tickets(service) -> list[dict]:
    return service.list_tickets().items


def test_a_superseded_owner_is_fenced_out_and_counted(intake, service, redis_client, keys):
    pool = PoolKeys(keys.prefix)
    old = PoolStore(redis_client, pool, "host-a-1", "ia")
    new = PoolStore(redis_client, pool, "host-b-1", "ib")
    assert old.acquire(["cam-plaza"], 300) == {"cam-plaza": 1}
    stamp_old = FenceStamp(camera="cam-plaza", owner="host-a-1", token=1)

    # made and queued while host-a held the lease, filed after the takeover (intake was behind): filed
    backlog = anomaly(kind="crowd", fence=stamp_old)
    publish_anomaly(redis_client, keys, backlog)
    got = wait_for(lambda: new.acquire(["cam-plaza"], 10_000), 5, what="host-b to take the lapsed lease")
    assert got == {"cam-plaza": 2}

    # host-a stalled and wakes up: what it publishes now, under fence 1, is fenced out
    stale = anomaly(kind="intrusion", zone="gate", fence=stamp_old)
    publish_anomaly(redis_client, keys, stale)
    # host-b's own report of the same place is filed
    fresh = anomaly(kind="intrusion", zone="gate", fence=FenceStamp(camera="cam-plaza", owner="host-b-1", token=2))
    publish_anomaly(redis_client, keys, fresh)

    handled = 0
    while handled < 3:
        n = intake.process_batch(block_ms=200)
        assert n, "intake stopped before handling the three entries"
        handled += n
    kinds = sorted(t["kind"] for t in _tickets(service))
    assert kinds == ["crowd", "intrusion"]                       # one intrusion ticket, not two
    intrusion = next(t for t in _tickets(service) if t["kind"] == "intrusion")
    assert [o["anomaly_id"] for o in service.get_ticket(intrusion["id"])["occurrences"]] == [fresh.id]
    assert board(redis_client, pool)["fenced"] == {"cam-plaza": 1, "_total": 1}
    from gateway.metrics import pool_metrics  # /metrics shows the same count (read from /status's pool entry)

    scraped = {s.labels["camera"]: s.value for m in pool_metrics(board(redis_client, pool))
               if m.name == "gridwatch_pool_fenced" for s in m.samples}
    assert scraped == {"cam-plaza": 1.0, "_total": 1.0}
    assert redis_client.xpending(keys.anomalies, INTAKE_GROUP)["pending"] == 0  # the stale entry is acknowledged


def test_unpooled_anomalies_are_not_fenced(intake, service, redis_client, keys):
    publish_anomaly(redis_client, keys, anomaly(kind="smoke", source="sensor", source_id="smoke-1", zone=None))
    publish_anomaly(redis_client, keys, anomaly(kind="crowd"))
    assert intake.process_batch(block_ms=200) == 2
    assert len(_tickets(service)) == 2
    assert board(redis_client, PoolKeys(keys.prefix))["fenced"] == {}
