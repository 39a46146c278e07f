"""Duty queues: one Redis stream per unit (grid of any level), read through the consumer group ``workers``.

A worker's page, the API or an MQTT bridge reads entries as a named consumer. An entry is
acknowledged only after the state change it asked for (the sign-for) is committed — whether
through ``DutyQueue.sign`` or through ``CaseService.transition`` from any other path, which
acknowledges by ticket id. Entries a consumer read and then died holding are taken over by the
next reader after ``claim_idle_s`` (XAUTOCLAIM). Entries whose ticket has already moved on
(signed elsewhere, escalated away, closed) are acknowledged and skipped when a store is given.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import redis
from sqlalchemy import select

from alerts.events import DUTY_GROUP, ensure_group, entries_key
from alerts.lifecycle import STATUS_LABELS, UNSIGNED, TransitionError
from alerts.models import Ticket
from alerts.store import Store
from alerts.streams import StreamKeys
from ingest.failpoints import failpoint

# Past sign-for: a repeat entry for a ticket in any of these is acknowledged, never signed again.
SIGNED_OR_LATER = frozenset(STATUS_LABELS) - UNSIGNED


@dataclass(frozen=True)
class DutyEntry:
    stream: str
    id: str
    ticket_id: int
    number: str
    reason: str
    ticket: dict[str, Any]
    claimed: bool = False


def _s(v: bytes | str | None) -> str:
    return v.decode() if isinstance(v, bytes) else (v or "")


class DutyQueue:
    """The duty queue of one unit, as seen by one consumer."""

    def __init__(self, redis: redis.Redis, keys: StreamKeys, unit_code: str, consumer: str, *,
                 store: Store | None = None, claim_idle_s: float = 60.0):
        self.redis, self.keys, self.unit, self.consumer = redis, keys, unit_code, consumer
        self.stream = keys.duty(unit_code)
        self.store = store
        self.claim_idle_ms = int(claim_idle_s * 1000)
        ensure_group(redis, self.stream, DUTY_GROUP)

    def _entry(self, eid: Any, fields: dict, claimed: bool) -> DutyEntry:
        f = {_s(k): _s(v) for k, v in fields.items()}
        return DutyEntry(self.stream, _s(eid), int(f.get("ticket_id", 0) or 0), f.get("number", ""), f.get("reason", ""),
                         json.loads(f["ticket"]) if f.get("ticket") else {}, claimed)

    def claim(self, count: int = 100) -> list[DutyEntry]:
        """Take over entries idle longer than ``claim_idle_s`` in any consumer's hands (a dead one's)."""
        out, start = [], "0-0"
        while True:
            nxt, entries, *_ = self.redis.xautoclaim(self.stream, DUTY_GROUP, self.consumer, self.claim_idle_ms,
                                                     start_id=start, count=count)
            out += [self._entry(eid, fields, True) for eid, fields in entries if fields is not None]
            if _s(nxt) == "0-0" or not entries:
                return out
            start = nxt

    def pending_mine(self, count: int = 100) -> list[DutyEntry]:
        """Entries this consumer already read and has not acknowledged (after its own restart)."""
        reply = self.redis.xreadgroup(DUTY_GROUP, self.consumer, {self.stream: "0"}, count=count)
        return [self._entry(eid, fields, False) for _s_, items in reply or [] for eid, fields in items if fields]

    def read(self, count: int = 10, block_ms: int | None = 1000) -> list[DutyEntry]:
        """Own pending entries, then re-claimed ones, then new ones; stale entries are acknowledged and dropped."""
        entries = self.pending_mine(count) + self.claim(count)
        if not entries:
            reply = self.redis.xreadgroup(DUTY_GROUP, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
            entries = [self._entry(eid, fields, False) for _s_, items in reply or [] for eid, fields in items if fields]
        return self._drop_stale(entries)

    def _drop_stale(self, entries: list[DutyEntry]) -> list[DutyEntry]:
        if self.store is None or not entries:
            return entries
        ids = {e.ticket_id for e in entries}
        with self.store.read() as s:
            live = {tid for tid, in s.execute(select(Ticket.id).where(
                Ticket.id.in_(ids), Ticket.unit_code == self.unit, Ticket.status.in_(("dispatched", "signed", "handling"))))}
        keep = []
        for e in entries:
            if e.ticket_id in live:
                keep.append(e)
            else:
                self.ack(e)
        return keep

    def ack(self, entry: DutyEntry) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.stream, DUTY_GROUP, entry.id)
        pipe.hdel(entries_key(self.keys, self.unit), str(entry.ticket_id))
        pipe.execute()

    def handle(self, entry: DutyEntry, action: Callable[[DutyEntry], Any]) -> Any:
        """Run ``action`` (which commits a state change) and acknowledge only if it returned without raising."""
        result = action(entry)
        failpoint("queue.after_sign")
        self.ack(entry)
        return result

    def sign(self, entry: DutyEntry, service: Any, actor: str, role: str = "grid_worker", note: str = "") -> dict[str, Any]:
        """签收 the entry's ticket through the case service, then acknowledge the entry.

        Idempotent: an entry whose ticket is already signed (this reader, or the one it took the entry over
        from, died between the commit and the XACK) is acknowledged without a second sign-for."""
        def act(e: DutyEntry) -> dict[str, Any]:
            try:
                return service.transition(e.ticket_id, "sign", actor, note, role=role)
            except TransitionError:
                current = service.get_ticket(e.ticket_id)
                if current.get("status") in SIGNED_OR_LATER:
                    return current
                raise

        return self.handle(entry, act)

    def pending_count(self) -> int:
        info = self.redis.xpending(self.stream, DUTY_GROUP)
        return int(info.get("pending", 0) if isinstance(info, dict) else info[0])
