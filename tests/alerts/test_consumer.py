"""The generic stream consumer against the real Redis: acknowledged only when handled, a dead consumer's entries
taken over, and entries the store refused retried first, in order, before anything new is read."""
from __future__ import annotations

import pytest

from alerts.consumer import Outcome, StreamConsumer

pytestmark = pytest.mark.timeout(30)


def _pending(client, stream: str, group: str) -> int:  # noqa: ANN001
    return int(client.xpending(stream, group)["pending"])


def test_done_is_acknowledged_and_retry_stays_pending_and_comes_back_first(redis_client, keys):
    stream = f"{keys.prefix}:work"
    c = StreamConsumer(redis_client, stream, "g", "c1", claim_idle_s=60)
    for i in range(4):
        redis_client.xadd(stream, {"n": str(i)})
    seen: list[str] = []
    store_up = {"ok": False}

    def handle(entry_id: str, fields: dict, quiet: bool) -> Outcome:
        seen.append(fields[b"n"].decode())
        if fields[b"n"] == b"1" and not store_up["ok"]:
            return Outcome.RETRY
        return Outcome.DONE

    assert c.process_batch(handle, block_ms=100) == 1          # 0 handled; 1 refused: 2 and 3 stay pending too
    assert c.store_down and _pending(redis_client, stream, "g") == 3
    redis_client.xadd(stream, {"n": "new"})
    store_up["ok"] = True
    assert c.process_batch(handle, block_ms=100) == 3          # our own pending ones first …
    assert seen == ["0", "1", "1", "2", "3"] and not c.store_down
    assert c.process_batch(handle, block_ms=100) == 1          # … then what is new
    assert seen[-1] == "new" and _pending(redis_client, stream, "g") == 0


def test_a_dead_consumers_entries_are_taken_over_after_the_claim_time(redis_client, keys):
    stream = f"{keys.prefix}:work"
    dead = StreamConsumer(redis_client, stream, "g", "dead", claim_idle_s=0.05)
    redis_client.xadd(stream, {"n": "a"})
    assert [f[b"n"] for _, f in dead.read(block_ms=100)] == [b"a"]  # read, never acknowledged: it "died"
    alive = StreamConsumer(redis_client, stream, "g", "alive", claim_idle_s=0.05)
    got: list[bytes] = []
    handled = 0
    for _ in range(50):  # the claim needs the entry idle for 50 ms: poll, do not sleep
        handled += alive.process_batch(lambda eid, f, q: (got.append(f[b"n"]), Outcome.DONE)[1], block_ms=20)
        if got:
            break
    assert got == [b"a"] and handled == 1 and _pending(redis_client, stream, "g") == 0


def test_an_entry_the_handler_acknowledged_with_its_effects_counts_as_handled(redis_client, keys):
    stream = f"{keys.prefix}:work"
    c = StreamConsumer(redis_client, stream, "g", "c1", claim_idle_s=60)
    redis_client.xadd(stream, {"n": "x"})

    def handle(entry_id: str, fields: dict, quiet: bool) -> Outcome:
        assert redis_client.xack(stream, "g", entry_id) == 1   # acknowledged with its effects, by the handler
        return Outcome.ACKED

    assert c.process_batch(handle, block_ms=100) == 1 and _pending(redis_client, stream, "g") == 0
