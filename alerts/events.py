"""Putting tickets on duty queues and ticket events on the events stream, after the SQL commit.

Both go through one Redis MULTI so a dispatch, its event and (for intake) the acknowledgement of
the anomaly entry land together or not at all. Each duty queue keeps a hash ticket id → entry id
(``{duty}:entries``) so the entry can be acknowledged when the ticket is signed through any path
(the queue page, the REST API, MQTT), not only by the consumer that read it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis

from alerts.streams import StreamKeys
from ingest.failpoints import failpoint

DUTY_GROUP = "workers"
DUTY_MAXLEN = 100_000
EVENTS_MAXLEN = 100_000


def entries_key(keys: StreamKeys, unit_code: str) -> str:
    return f"{keys.duty(unit_code)}:entries"


@dataclass
class Effects:
    """Redis writes a committed transaction owes: duty-queue entries and events, published in order."""

    duty: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)   # (unit, ticket summary, reason)
    events: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (type, ticket, extra)
    ack_duty: list[tuple[str, int]] = field(default_factory=list)               # (unit, ticket id)

    def extend(self, other: "Effects") -> None:
        self.duty += other.duty
        self.events += other.events
        self.ack_duty += other.ack_duty

    def __bool__(self) -> bool:
        return bool(self.duty or self.events or self.ack_duty)


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create the consumer group (and the stream) if missing; reading from the start so nothing is skipped."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def publish(client: redis.Redis, keys: StreamKeys, effects: Effects, ack: tuple[str, str, str] | None = None,
            now: datetime | None = None) -> list[str]:
    """Write the effects (and XACK ``ack`` = (stream, group, id)) in one MULTI; returns the duty entry ids."""
    at = (now or datetime.now(timezone.utc)).isoformat()
    # No XGROUP CREATE here: readers create the group from id 0, so entries added before it exists are not lost.
    stale: list[tuple[str, str]] = []
    for unit, ticket_id in effects.ack_duty:
        entry = client.hget(entries_key(keys, unit), str(ticket_id))
        if entry is not None:
            stale.append((unit, entry.decode() if isinstance(entry, bytes) else entry))
    pipe = client.pipeline(transaction=True)
    for unit, entry in stale:
        pipe.xack(keys.duty(unit), DUTY_GROUP, entry)
    for unit, ticket_id in effects.ack_duty:
        pipe.hdel(entries_key(keys, unit), str(ticket_id))
    for unit, ticket, reason in effects.duty:
        pipe.xadd(keys.duty(unit), {"ticket_id": str(ticket["id"]), "number": ticket["number"], "reason": reason,
                                    "ticket": json.dumps(ticket, ensure_ascii=False), "at": at},
                  maxlen=DUTY_MAXLEN, approximate=True)
    for etype, ticket, extra in effects.events:
        body = {"type": etype, "at": at, "ticket": ticket, **extra}
        pipe.xadd(keys.events, {"type": etype, "ticket_id": str(ticket.get("id", "")),
                                "event": json.dumps(body, ensure_ascii=False, default=str)},
                  maxlen=EVENTS_MAXLEN, approximate=True)
    if ack is not None:
        pipe.xack(*ack)
        failpoint("intake.before_xack")
    results = pipe.execute()
    offset = len(stale) + len(effects.ack_duty)
    ids = [r.decode() if isinstance(r, bytes) else r for r in results[offset:offset + len(effects.duty)]]
    if effects.duty:
        pipe = client.pipeline(transaction=False)
        for (unit, ticket, _), entry in zip(effects.duty, ids):
            pipe.hset(entries_key(keys, unit), str(ticket["id"]), entry)
        pipe.execute()
    return ids
