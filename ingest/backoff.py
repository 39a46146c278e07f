"""How long GridWatch's retry loops wait after each failure, computed by tenacity's wait strategies.

The loops themselves stay where they are: they run for the life of a process, start over after a good
run, and wait on the process's stop event so shutdown is prompt — a shape tenacity's ``Retrying`` (one call
retried until it returns) does not fit. What was written by hand six times is the delay after the n-th
failure; that is tenacity's ``wait_exponential`` (plain doubling) or, for many clients reconnecting after
one outage, "equal jitter" (half the ceiling fixed, half random: ``wait_exponential`` + ``wait_random_exponential``
over half the range each), which spreads a reconnect storm without ever waiting almost nothing.

Used by: camera reconnects (jittered), the detector client's connect, the video worker pool's and the
supervisor's restarts of dead children, the stream consumer (intake, notify) and the reporters' notifier on Redis
or store outages, and the retries of one webhook delivery.
"""
from __future__ import annotations

from tenacity import RetryCallState, wait_exponential, wait_random_exponential
from tenacity.wait import wait_base


class Backoff:
    """Delays for consecutive failures of one operation: ``initial_s`` doubling up to ``max_s``.

    ``next_delay()`` after each failure, ``reset()`` after a success (or a run long enough to count as one).
    """

    def __init__(self, initial_s: float, max_s: float, *, jitter: bool = False):
        if jitter:
            half_i, half_m = initial_s / 2, max_s / 2
            self._wait: wait_base = (wait_exponential(multiplier=half_i, max=half_m)
                                     + wait_random_exponential(multiplier=half_i, max=half_m))
        else:
            self._wait = wait_exponential(multiplier=initial_s, max=max_s)
        self._state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]

    @property
    def failures(self) -> int:
        """Failures since the last reset."""
        return self._state.attempt_number - 1

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next try."""
        delay = float(self._wait(self._state))
        self._state.attempt_number += 1
        return delay

    def reset(self) -> None:
        """Start over from ``initial_s`` (the operation worked)."""
        self._state.attempt_number = 1
