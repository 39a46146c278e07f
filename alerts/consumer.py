"""One consumer of a Redis stream in a consumer group: what intake, the notifier and any other reader share.

The rules every reader of GridWatch's streams keeps (docs/ARCHITECTURE.md, durability):

* read through a consumer group, so several processes split a stream;
* take over entries a dead consumer read and never acknowledged (XAUTOCLAIM after ``claim_idle_s``);
* acknowledge an entry only after it was durably handled — by the handler itself when the XACK must land
  atomically with its effects (intake), else here, after the handler returned;
* when the handler says its store is away, stop reading new entries, retry our own pending ones first
  (``XREADGROUP … 0``, not after the idle time meant for dead consumers) with back-off, and log once per
  outage and once on recovery;
* a Redis error is logged and retried with back-off (doubling up to a cap), never fatal.
"""
from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from alerts.events import ensure_group
from ingest.backoff import Backoff

log = logging.getLogger(__name__)

Entry = tuple[str, dict]


class Outcome(enum.Enum):
    DONE = "done"      # handled durably: acknowledge it
    ACKED = "acked"    # handled durably and acknowledged by the handler (with its effects, atomically)
    RETRY = "retry"    # the store is away: leave it (and the rest of the batch) pending, back off, retry


# handler(entry id, fields, quiet) -> Outcome; ``quiet``: the store was away at the last try (log once per outage)
Handler = Callable[[str, dict, bool], Outcome]


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class StreamConsumer:
    """Reads ``stream`` as ``consumer`` of ``group`` and hands each entry to a handler."""

    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str, *, batch: int = 64,
                 claim_idle_s: float = 30.0, name: str = "consumer", retry_s: tuple[float, float] = (0.5, 30.0)):
        self.redis, self.stream, self.group, self.consumer = client, stream, group, consumer
        self.batch = batch
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.name = name
        self.retry_s = retry_s
        self._group_ready = False
        self._last_claim = 0.0
        self._retry_own = False   # the store refused: our own pending entries are retried first
        self.store_down = False

    def ensure_group(self) -> None:
        if not self._group_ready:
            ensure_group(self.redis, self.stream, self.group)
            self._group_ready = True

    def ack(self, entry_id: str) -> None:
        self.redis.xack(self.stream, self.group, entry_id)

    def claim_stale(self) -> list[Entry]:
        """Take over entries that a dead consumer read but never acknowledged (idle longer than the claim time)."""
        self.ensure_group()
        claimed: list[Entry] = []
        start: Any = "0-0"
        while True:
            reply = self.redis.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms,
                                          start_id=start, count=self.batch)
            start, entries = reply[0], reply[1]
            claimed += [(_text(e[0]), e[1]) for e in entries if e and e[1] is not None]
            if _text(start) == "0-0" or not entries:
                return claimed

    def own_pending(self) -> list[Entry]:
        """Entries this consumer read and has not acknowledged (oldest first); trimmed-away ones are acknowledged."""
        reply = self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=self.batch)
        out: list[Entry] = []
        for _stream, items in reply or []:
            for eid, fields in items:
                if fields:
                    out.append((_text(eid), fields))
                else:  # trimmed from the stream (MAXLEN) while pending: nothing is left to handle
                    log.error("%s: pending entry %s was trimmed from %s before it was handled", self.name, _text(eid),
                              self.stream)
                    self.ack(_text(eid))
        return out

    def read(self, block_ms: int = 1000) -> list[Entry]:
        """Our own entries to retry, else re-claimed ones (every half claim time), else new ones (blocking)."""
        self.ensure_group()
        entries: list[Entry] = []
        if self._retry_own:
            entries += self.own_pending()
            self._retry_own = bool(entries)
        now = time.monotonic()
        if not entries and now - self._last_claim >= self.claim_idle_ms / 2000:
            self._last_claim = now
            entries += self.claim_stale()
        if not entries:
            reply = self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=self.batch,
                                          block=block_ms or None)
            for _stream, items in reply or []:
                entries += [(_text(eid), fields) for eid, fields in items if fields is not None]
        return entries

    def process_batch(self, handle: Handler, block_ms: int = 1000) -> int:
        """Read what is waiting and hand it over in order; returns how many entries were handled."""
        entries = self.read(block_ms)
        handled = 0
        was_down = self.store_down
        self.store_down = False
        for entry_id, fields in entries:
            outcome = handle(entry_id, fields, was_down)
            if outcome is Outcome.RETRY:
                # The store is away: the rest of the batch stays pending to us and is retried first next time.
                self._retry_own = self.store_down = True
                break
            if outcome is Outcome.DONE:
                self.ack(entry_id)
            handled += 1
        if was_down and not self.store_down:
            log.warning("%s: store is back; resumed", self.name)
        return handled

    def run_forever(self, stop: threading.Event, handle: Handler, block_ms: int = 1000) -> None:
        """Process until ``stop`` is set; a store outage backs off 0.25 s doubling to 5 s, Redis errors
        ``retry_s`` (first, then doubling up to the cap)."""
        redis_backoff, store_backoff = Backoff(*self.retry_s), Backoff(0.25, 5.0)
        while not stop.is_set():
            try:
                self.process_batch(handle, block_ms)
                redis_backoff.reset()
                if self.store_down:
                    stop.wait(store_backoff.next_delay())
                else:
                    store_backoff.reset()
            except redis.RedisError as exc:
                delay = redis_backoff.next_delay()
                log.warning("%s: redis error %s; retrying in %.1fs", self.name, exc, delay)
                self._group_ready = False
                stop.wait(delay)
