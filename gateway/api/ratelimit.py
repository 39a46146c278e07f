"""Rate limits of the public endpoints — login per client address, alarm presses per device and per address —
shared by every API process of a deployment through Redis (the ``limits`` package, moving window).

Why shared: behind a load balancer each API node kept its own budget, so N nodes let N times the presses or
password guesses through. The counters live under ``{prefix}:limits:…`` (one hash tag, so a Redis Cluster keeps
each limit's key in one slot). Why a local fallback: the limits protect this process's CPU (bcrypt, signature
checks) from floods, so when Redis does not answer, the process goes on limiting by itself (in memory, per
process) instead of letting everything through or refusing everything; it logs that once per minute.
"""
from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)


def limit_item(per_minute: float) -> RateLimitItem:
    """``per_minute`` as a window ``limits`` can count: N a minute, or (below 1 a minute) N an hour."""
    if per_minute >= 1:
        return RateLimitItemPerMinute(math.floor(per_minute))
    return RateLimitItemPerHour(max(1, round(per_minute * 60)))


def shared_storage(redis_url: str, prefix: str) -> Storage:
    """The deployment's Redis (``redis://`` or ``redis+cluster://h:p,h:p``) as the limits' storage."""
    return storage_from_string(redis_url, key_prefix="{" + prefix + "}:limits")


class SharedLimit:
    """At most ``per_minute`` requests per key in any 60 s (moving window), counted in ``storage`` (memory by default)."""

    def __init__(self, per_minute: float, storage: Storage | None = None, name: str = "limit"):
        self.item = limit_item(per_minute)
        self.name = name
        self.limiter = MovingWindowRateLimiter(storage or MemoryStorage())
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._warned_at = 0.0

    def take(self, key: str) -> float:
        """Count one request; 0 when allowed, else the seconds until one is (Retry-After)."""
        try:
            return self._take(self.limiter, key)
        except Exception as exc:  # the shared storage away: limit in this process until it answers again
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("%s rate limit counted in this process only: shared storage failed: %s", self.name, exc)
            return self._take(self._local, key)

    def _take(self, limiter: MovingWindowRateLimiter, key: str) -> float:
        if limiter.hit(self.item, self.name, key):
            return 0.0
        reset_at = limiter.get_window_stats(self.item, self.name, key).reset_time
        return max(0.001, reset_at - time.time())
