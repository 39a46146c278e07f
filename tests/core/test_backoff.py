"""The retry loops' delays (ingest.backoff, tenacity's wait strategies): doubling, capped, jittered, reset."""
from __future__ import annotations

from ingest.backoff import Backoff


def test_plain_backoff_doubles_up_to_the_cap_and_starts_over_after_reset() -> None:
    backoff = Backoff(0.5, 30)
    assert [backoff.next_delay() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.failures == 8
    backoff.reset()
    assert (backoff.failures, backoff.next_delay()) == (0, 0.5)


def test_equal_jitter_keeps_half_the_ceiling_and_randomises_the_rest() -> None:
    ceilings = [1, 2, 4, 8, 16, 30, 30]  # initial 1 s doubling, capped at 30 s
    for _ in range(200):
        backoff = Backoff(1, 30, jitter=True)
        for ceiling in ceilings:
            assert ceiling / 2 <= backoff.next_delay() <= ceiling
    spread = {round(Backoff(1, 30, jitter=True).next_delay(), 3) for _ in range(50)}
    assert len(spread) > 10, "cameras reconnecting together must not all wait the same time"
