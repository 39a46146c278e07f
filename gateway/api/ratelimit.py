"""A token bucket per key (client address, device id) for the public endpoints: login and alarm press.

In-process on purpose: the limits protect this process's CPU (bcrypt, signature checks) from floods;
a shared limit across processes would need a Redis round trip on exactly the path being flooded.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict


class TokenBucket:
    """``rate_per_minute`` tokens refill continuously up to ``burst``; each request takes one."""

    def __init__(self, rate_per_minute: float, burst: float | None = None, max_keys: int = 10_000):
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1.0, rate_per_minute))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def take(self, key: str) -> float:
        """Take a token; returns 0 when allowed, else the seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait
