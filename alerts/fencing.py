"""Fencing at intake: an anomaly made under a camera lease that was superseded is rejected and counted.

Why at intake and why by stream time: the video pool (``detectors.pool_member``) grants each camera's lease
with a new, larger fencing token and records the grant's Redis server time (``{p}:pool:grants:{camera}``).
A former owner that stalled (a long GC pause, SIGSTOP, a partition whose buffered anomalies flush on healing)
may still publish after a successor took over; its anomaly then reaches the stream *after* the grant of a
newer token, and would file a second ticket for what the successor already reported. The stream entry's id is
the Redis server's time of the XADD, so "reached the stream after the next grant" compares two times of the
same clock: no worker's wall clock is trusted. An anomaly that entered the stream before the takeover (a backlog
at intake) was made by the then-owner and is filed as usual — fencing never drops a valid alarm for lateness.

Rejections are counted per camera in ``{p}:pool:fenced`` (and ``_total``), shown by ``/api/v1/status`` under
``pool.fenced``.
"""
from __future__ import annotations

import logging

import redis

from ingest.anomaly import Anomaly
from detectors.pool_keys import PoolKeys

log = logging.getLogger(__name__)

TOTAL = "_total"


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def entry_ms(entry_id: bytes | str) -> int:
    """The server time (ms) a stream entry was added at, from its auto-generated id ``<ms>-<seq>``."""
    return int(_text(entry_id).split("-", 1)[0])


def superseded_at(client: redis.Redis, keys: PoolKeys, camera_id: str, token: int) -> int | None:
    """Server ms at which the first lease newer than ``token`` was granted; None if none was."""
    got = client.zrangebyscore(keys.grants(camera_id), f"({token}", "+inf", start=0, num=1)
    if not got:
        return None
    return int(_text(got[0]).split(":", 1)[1])


def stale_owner(client: redis.Redis, prefix: str, anomaly: Anomaly, entry_id: bytes | str) -> bool:
    """True (and counted) when ``anomaly`` was put on the stream after its lease had been superseded."""
    stamp = anomaly.fence
    if stamp is None:
        return False
    keys = PoolKeys(prefix)
    newer = superseded_at(client, keys, stamp.camera, stamp.token)
    if newer is None or newer > entry_ms(entry_id):
        return False
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(keys.fenced, stamp.camera, 1)
    pipe.hincrby(keys.fenced, TOTAL, 1)
    pipe.execute()
    log.warning("intake: anomaly %s (%s) of camera %s rejected: made by %s under fence %d, superseded at %d ms",
                anomaly.id, anomaly.kind, stamp.camera, stamp.owner, stamp.token, newer)
    return True

