"""Names of the Redis streams GridWatch uses, and the one way to put an anomaly on them.

``{prefix}:anomalies``      every Anomaly from every source; consumer group ``intake``.
``{prefix}:duty:{grid}``    the duty queue of one grid (any level); consumer group ``workers``.
``{prefix}:deadletter``     input that was rejected, with the reason, for an operator to read.
``{prefix}:events``         ticket events (created, merged, transitions) for live pages.
``{prefix}:outbox:{key}``   marker (TTL 24 h): outbox row ``key`` was published, so it never lands twice.

The braces are literal: the prefix is the Redis Cluster hash tag of every name (``{gw}:anomalies``), because
intake acknowledges an anomaly in the same MULTI that appends to duty queues and the events stream, and a
sign-for acknowledges a duty entry with its ``:entries`` hash — a cluster runs those only within one slot.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from ingest.anomaly import Anomaly
from ingest.redis_connect import hash_tag

ANOMALY_STREAM_MAXLEN = 1_000_000


@dataclass(frozen=True)
class StreamKeys:
    prefix: str = "gw"

    @property
    def tag(self) -> str:
        return hash_tag(self.prefix)

    @property
    def anomalies(self) -> str:
        return f"{self.tag}:anomalies"

    @property
    def deadletter(self) -> str:
        return f"{self.tag}:deadletter"

    @property
    def events(self) -> str:
        return f"{self.tag}:events"

    def duty(self, grid_code: str) -> str:
        return f"{self.tag}:duty:{grid_code}"

    def outbox_sent(self, key: str) -> str:
        """The marker that the outbox row ``key`` was published (``alerts.outbox``)."""
        return f"{self.tag}:outbox:{key}"


def publish_anomaly(client: redis.Redis, keys: StreamKeys, anomaly: Anomaly) -> str:
    """Append an anomaly to the intake stream; returns the stream entry id."""
    entry_id = client.xadd(keys.anomalies, anomaly.to_stream(), maxlen=ANOMALY_STREAM_MAXLEN, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def dead_letter(client: redis.Redis, keys: StreamKeys, source: str, reason: str, payload: bytes | str) -> None:
    """Quarantine input that could not be used, so an operator can see what was refused and why."""
    if isinstance(payload, bytes):
        payload = payload[:65536].decode("utf-8", errors="replace")
    client.xadd(keys.deadletter, {"source": source, "reason": reason, "payload": payload[:65536]}, maxlen=100_000, approximate=True)


class AnomalyOutbox:
    """Publishes anomalies, holding them in a bounded local buffer while Redis is unreachable.

    A detector must not block on a Redis outage, and an anomaly must not vanish because of one:
    failed publishes wait here (oldest dropped only past ``capacity``, counted) and ``flush()``
    — called by the runtime's loop — sends them in order once Redis answers. Intake de-duplicates by
    anomaly id, so a publish that reached Redis before the error was seen costs nothing.
    """

    def __init__(self, client: redis.Redis, keys: StreamKeys, capacity: int = 50_000):
        from collections import deque
        import threading

        self._client, self._keys = client, keys
        self._pending: deque[Anomaly] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def publish(self, anomaly: Anomaly) -> None:
        with self._lock:
            if not self._pending:
                try:
                    publish_anomaly(self._client, self._keys, anomaly)
                    return
                except redis.RedisError:
                    pass
            if len(self._pending) >= self._capacity:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(anomaly)

    def flush(self) -> int:
        """Send what is buffered, in order; stops at the first failure. Returns how many were sent."""
        sent = 0
        with self._lock:
            while self._pending:
                try:
                    publish_anomaly(self._client, self._keys, self._pending[0])
                except redis.RedisError:
                    break
                self._pending.popleft()
                sent += 1
        return sent
