"""A picklable recipe for the anomaly publisher, for processes that cannot be handed a live Redis client.

Why: a video worker process (``detectors.worker_pool``) is started with the spawn method, so it cannot inherit
the parent's Redis connection or a bound ``publish`` method; it gets this small value instead and builds its own
``AnomalyOutbox`` (bounded local buffer while Redis is down, flushed by the worker's loop) on the other side.
"""
from __future__ import annotations

from dataclasses import dataclass

from alerts.streams import AnomalyOutbox, StreamKeys
from ingest.redis_connect import connect


@dataclass(frozen=True)
class OutboxFactory:
    """``OutboxFactory(redis_url, stream_prefix)()`` → an ``AnomalyOutbox`` on that Redis and prefix."""

    redis_url: str
    stream_prefix: str = "gw"

    def __call__(self) -> AnomalyOutbox:
        return AnomalyOutbox(connect(self.redis_url), StreamKeys(self.stream_prefix))

    @classmethod
    def of(cls, deployment) -> "OutboxFactory":  # noqa: ANN001 - gateway.config.Deployment (no upward import)
        return cls(deployment.services.redis_url, deployment.services.stream_prefix)
