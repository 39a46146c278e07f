"""Duty queues: acked only after the sign-for commits; a killed consumer's entries are re-claimed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from alerts.queues import DutyQueue
from tests.alerts.helpers import anomaly, poll
from tests.alerts.conftest import REPO

pytestmark = pytest.mark.timeout(60)
GRID = "330199001001001"


def test_sign_acks_only_after_commit(intake, service, redis_client, keys, store):
    tid = intake.file(anomaly()).ticket_id
    q = DutyQueue(redis_client, keys, GRID, "worker_qh1-page", store=store)
    [entry] = q.read(block_ms=100)
    assert entry.ticket_id == tid and entry.ticket["number"].startswith("QS")
    with pytest.raises(Exception):
        q.sign(entry, service, "x", role="operator")     # refused: nothing committed, entry stays pending
    assert q.pending_count() == 1
    q.sign(entry, service, "worker_qh1")
    assert q.pending_count() == 0 and service.get_ticket(tid)["status"] == "signed"


def test_signing_through_the_api_acks_the_queue_entry(intake, service, redis_client, keys, store):
    tid = intake.file(anomaly()).ticket_id
    q = DutyQueue(redis_client, keys, GRID, "page", store=store)
    assert len(q.read(block_ms=100)) == 1
    service.transition(tid, "sign", "worker_qh1", role="grid_worker")   # e.g. from the REST API
    assert q.pending_count() == 0


def test_stale_entries_are_dropped(intake, service, redis_client, keys, store):
    tid = intake.file(anomaly()).ticket_id
    service.transition(tid, "void", "d", "dup", role="dispatcher")
    q = DutyQueue(redis_client, keys, GRID, "page", store=store)
    assert q.read(block_ms=100) == [] and q.pending_count() == 0


def test_killed_consumer_entries_are_reclaimed(intake, service, redis_client, keys, store, stream_prefix):
    tid = intake.file(anomaly()).ticket_id
    script = textwrap.dedent(f"""
        import sys, time, redis
        sys.path.insert(0, {str(REPO)!r})
        from alerts.queues import DutyQueue
        from alerts.streams import StreamKeys
        q = DutyQueue(redis.Redis(), StreamKeys({stream_prefix!r}), {GRID!r}, "doomed")
        got = q.read(block_ms=2000)
        print(got[0].ticket_id, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert int(proc.stdout.readline()) == tid
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    # before its lease ran out the dead consumer's entry is nobody else's: a reader with a 30 s lease gets nothing
    early = DutyQueue(redis_client, keys, GRID, "early", store=store, claim_idle_s=30)
    assert early.read(block_ms=10) == [] and early.pending_count() == 1
    survivor = DutyQueue(redis_client, keys, GRID, "survivor", store=store, claim_idle_s=0.3)
    entries = poll(lambda: survivor.claim(), timeout=5)
    assert entries[0].ticket_id == tid and entries[0].claimed
    survivor.sign(entries[0], service, "worker_qh1")
    assert survivor.pending_count() == 0
