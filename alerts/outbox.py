"""The transactional outbox: what a committed change owes Redis is committed with the change.

A part that changes tickets (intake, the case service, the escalator) writes, in the SAME SQL transaction,
one ``outbox`` row holding the exact Redis writes the change implies (duty-queue entries, events, duty
acknowledgements, intake's XACK of the anomaly entry — ``alerts.events.Rendered``). After the commit it
publishes the row at once (no added latency) and forgets it; the row is deleted by its next transaction
(no extra SQL round trip on the hot path) or by the relay.

Killed between the commit and the publish (F-CASE-1, F-SLA-1), or refused by Redis during an outage, the
row stays. Every GridWatch process that holds the case store runs ``Outbox.run_forever`` (the relay): it
publishes rows older than ``grace_s`` in commit order and deletes them, so a restarted process, or any
other one, sends what the dead one owed.

Exactly once into Redis, whoever sends: each row has a random ``key``; the publish script sets the marker
``{prefix}:outbox:{key}`` (TTL 24 h) in the same atomic step as the XADDs, and a row whose marker exists
changes nothing (only the idempotent XACK is repeated). Chosen over consumer-side de-duplication because
the readers of these streams are many (duty-queue readers, two notifiers, the live pages, external MQTT
subscribers) and none of them has to change; chosen over deterministic stream ids because XADD refuses an
id below the stream's last one, which a late relay would hit. The marker must outlive a row's time between
publish and delete: a row that stays undeleted for more than 24 h (the store unwritable that long) could
be sent a second time.

Order: a process publishes its own rows in commit order. A row left by a killed process is sent up to
``grace_s`` + one relay interval later, so it may land after a newer change of the same ticket made
elsewhere; readers already tolerate that (a duty-queue reader acknowledges entries whose ticket moved on).
"""
from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import redis
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from alerts.events import Effects, Rendered, render, send
from alerts.models import OutboxEntry
from alerts.store import Store
from alerts.streams import StreamKeys

log = logging.getLogger(__name__)

Ack = tuple[str, str, str]


@dataclass(frozen=True)
class Pending:
    """One transaction's publication: its row's key (None: nothing was owed but the XACK) and what to send."""

    key: str | None
    rendered: Rendered
    cleared: tuple[str, ...] = ()  # rows of earlier publications this transaction deleted


class Outbox:
    """One committing part's outbox: ``stage`` inside the transaction, ``publish`` after the commit; ``relay``
    (``run_forever``) sends what any process left behind. Safe to share between threads."""

    def __init__(self, store: Store, client: redis.Redis, keys: StreamKeys, *, grace_s: float = 2.0,
                 batch: int = 200, marker_ttl_s: int = 86_400):
        self.store, self.redis, self.keys = store, client, keys
        self.grace_s, self.batch, self.marker_ttl_s = grace_s, batch, marker_ttl_s
        self._lock = threading.Lock()
        self._sent: list[str] = []  # keys published by us, their rows not deleted yet
        self._behind = False        # a publish of ours failed: its row (and maybe later ones) wait in SQL
        self.stats = {"published": 0, "relayed": 0}

    def stage(self, s: Session, effects: Effects, now: datetime, ack: Ack | None = None) -> Pending:
        """In the caller's transaction: the row that makes ``effects`` outlive a crash after the commit."""
        with self._lock:
            cleared = tuple(self._sent)
        if cleared:
            s.execute(delete(OutboxEntry).where(OutboxEntry.key.in_(cleared)))
        rendered = render(effects, now, ack)
        if not rendered.effects:
            return Pending(None, rendered, cleared)
        key = uuid.uuid4().hex
        s.add(OutboxEntry(key=key, created_at=datetime.now(timezone.utc), payload=rendered.to_json()))
        return Pending(key, rendered, cleared)

    def publish(self, pending: Pending) -> list[str]:
        """After the commit: send it; returns the duty entry ids. A RedisError leaves the row to the relay."""
        with self._lock:
            if pending.cleared:
                self._sent = [k for k in self._sent if k not in set(pending.cleared)]
        if self._behind:
            self.relay(grace_s=0)  # what we failed to send before goes first, in commit order
        if pending.key is None and pending.rendered.ack is None:
            return []
        try:
            ids = send(self.redis, self.keys, pending.rendered, once=pending.key, once_ttl_s=self.marker_ttl_s)
        except redis.RedisError:
            self._behind = self._behind or pending.key is not None
            raise
        if pending.key is not None:
            with self._lock:
                self._sent.append(pending.key)
            self.stats["published"] += 1
        return ids or []

    def relay(self, grace_s: float | None = None) -> int:
        """Send the rows older than ``grace_s`` (every process's), oldest first, and delete them; returns how
        many were sent now (rows already sent by their owner only get deleted)."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=self.grace_s if grace_s is None else grace_s)
        relayed = 0
        while True:
            with self.store.read() as s:
                rows = s.execute(select(OutboxEntry.key, OutboxEntry.payload).where(OutboxEntry.created_at <= cutoff)
                                 .order_by(OutboxEntry.id).limit(self.batch)).all()
            for key, payload in rows:
                if send(self.redis, self.keys, Rendered.from_json(payload), once=key,
                        once_ttl_s=self.marker_ttl_s) is not None:
                    relayed += 1
            with self._lock:
                done = [key for key, _ in rows] + self._sent
                self._sent = []
            if done:
                try:
                    with self.store.write() as s:
                        s.execute(delete(OutboxEntry).where(OutboxEntry.key.in_(done)))
                except Exception:
                    with self._lock:  # published; deleted by a later sweep (the markers keep them from landing twice)
                        self._sent += [k for k in done if k not in self._sent]
                    raise
            if len(rows) < self.batch:
                break
        self._behind = False
        if relayed:
            self.stats["relayed"] += relayed
            log.warning("outbox: sent %d publication(s) a process committed and did not send "
                        "(killed after its commit, or Redis was away)", relayed)
        return relayed

    def run_forever(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """The relay loop every process holding the store runs; store or Redis errors are logged and retried."""
        while not stop.is_set():
            try:
                self.relay()
            except Exception as exc:  # an outage of either side: the rows wait in SQL
                log.warning("outbox relay: %s: %s; retrying", type(exc).__name__, exc)
            stop.wait(interval_s)
