"""Anomalies → tickets: idempotent, classified, routed, merged, committed with what they owe Redis, then published.

Following one anomaly through ``Intake``: (1) an anomaly id already filed is a duplicate of its case (re-claimed
entries, re-sent messages, a box retrying its press); (2) a ``cleared`` state clears (and may close) the open
ticket it ended; (3) it is classified into a category; an ``activity``-tier one is recorded for the camera's
timeline and makes no ticket (``alerts.activity``); (4) a camera's anomaly under a suppression (taught by a
false alarm) is counted and dropped; (5) it joins the open ticket ``alerts.merging`` finds — the one merge
path for every source — (6) or opens a ticket (``alerts.filing``: routed, numbered, created and dispatched
through ``alerts.lifecycle``); (7) the batch commits with its outbox row (``alerts.outbox``: the duty-queue
entries, the events and, on the stream path, the XACK of the entry), which is then published in one atomic
script. Killed after the commit, the outbox row is sent by the successor's relay; nothing is acknowledged
before its commit.

The stream path (``run_forever``, consumer group ``intake``) reads through ``alerts.consumer.StreamConsumer``:
claim of a dead consumer's entries, acknowledgement only after the commit, a database outage leaving entries
pending (retried first, with back-off, one log line per outage). Input that cannot be used goes to the
dead-letter stream and is acknowledged, so one bad entry never blocks the stream.

``file(anomaly)`` does the same synchronously for the one-key alarm path, which must answer the set-top box
with a case number within a second. ``file_many(anomalies)`` files a whole batch in one transaction (group
commit): a burst of presses then pays the per-transaction cost (BEGIN IMMEDIATE, commit, the Redis round trip)
once per batch instead of once per press; its case numbers are reserved in one statement and its occurrence
and history rows go in with one bulk INSERT per table. Presses of one batch merge with each other exactly as
if they had been filed one after another, in the batch's order.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Callable

import redis
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from alerts import activity, lifecycle
from alerts.config import AlertsConfig
from alerts.consumer import Outcome, StreamConsumer
from alerts.events import Effects
from alerts.fencing import stale_owner
from alerts.filing import (BulkRows, CaseNumbers, Clock, Desk, NewTicket, OccurrenceRow, RoutingError, aware,
                           open_ticket, route_point, stage_ticket, utcnow)
from alerts.grids import GridIndex
from alerts.lifecycle import OPEN
from alerts.merging import CHUNK, MergeIndex
from alerts.models import Occurrence, Suppression, Ticket
from alerts.outbox import Outbox, Pending
from alerts.policy import CasePolicy
from alerts.store import Store
from alerts.streams import StreamKeys, dead_letter
from alerts.views import TicketRef, ticket_summary
from ingest.anomaly import Anomaly
from ingest.failpoints import failpoint

__all__ = ["INTAKE_GROUP", "Intake", "Clock", "utcnow", "RoutingError", "route_point", "open_ticket", "stage_ticket",
           "OccurrenceRow", "NewTicket"]

log = logging.getLogger(__name__)

INTAKE_GROUP = "intake"
Ack = tuple[str, str, str]
# What filing one anomaly answers, completed after its batch's flush: (the case it landed in, what to publish).
Staged = Callable[[], "tuple[TicketRef, Effects]"]


def _done(result: "tuple[TicketRef, Effects]") -> Staged:
    return lambda: result


class Intake:
    """Turns anomalies into committed tickets; one instance per consumer name."""

    def __init__(self, store: Store, grids: GridIndex, alerts_cfg: AlertsConfig, redis: redis.Redis, keys: StreamKeys,
                 consumer: str, *, policy: CasePolicy | None = None, clock: Clock = utcnow, batch: int = 64,
                 claim_idle_s: float | None = None, outbox: Outbox | None = None):
        self.store, self.grids, self.cfg, self.redis, self.keys = store, grids, alerts_cfg, redis, keys
        self.outbox = outbox or Outbox(store, redis, keys)
        self.consumer = consumer
        self.policy = policy or CasePolicy(alerts_cfg)
        self.clock = clock
        self.desk = Desk.of(store, alerts_cfg, self.policy, grids)
        self.stream = StreamConsumer(redis, keys.anomalies, INTAKE_GROUP, consumer, batch=batch, name="intake",
                                     claim_idle_s=claim_idle_s if claim_idle_s is not None else alerts_cfg.intake_claim_idle_s)
        self.stats = {"filed": 0, "created": 0, "merged": 0, "duplicate": 0, "suppressed": 0, "cleared": 0, "dead": 0}

    @property
    def batch(self) -> int:
        return self.stream.batch

    @property
    def claim_idle_ms(self) -> int:
        return self.stream.claim_idle_ms

    @property
    def store_down(self) -> bool:
        """The store refused the last commit: the stream loop is backing off (entries stay pending)."""
        return self.stream.store_down

    # -- the synchronous path ----------------------------------------------------------------
    def file(self, anomaly: Anomaly) -> TicketRef:
        """File one anomaly now and publish its duty entry and event; returns the case it landed in."""
        return self.file_many([anomaly])[0]

    def file_many(self, anomalies: Iterable[Anomaly], *, return_exceptions: bool = False) -> list:
        """File a batch in ONE transaction, then publish its duty entries and events; one TicketRef per anomaly.

        Why: one-key alarms arrive in bursts (an incident makes a whole building press), and a transaction
        per press queues the burst for seconds; one commit for all waiting presses answers them all at once.
        Semantics are those of calling ``file`` for each anomaly in order: an anomaly id already filed (or
        twice in the batch) is a ``duplicate`` of its case, and presses of the same place within the merge
        window merge into one case, also when both are in this batch.

        ``return_exceptions=False``: all or nothing — any error rolls the whole batch back and is raised.
        ``return_exceptions=True``: a batch that fails for one anomaly's sake (bad data, a bug) is filed
        again one anomaly per transaction, so only that anomaly's slot holds its exception and the others
        are filed; a store or Redis outage puts its exception in every slot (nothing was acknowledged).
        """
        items = list(anomalies)
        if not items:
            return []
        try:
            return self._file_batch(items)
        except Exception as exc:
            if not return_exceptions:
                raise
            if len(items) == 1 or isinstance(exc, (OperationalError, redis.RedisError)):
                if len(items) > 1:
                    log.warning("filing a batch of %d anomalies failed: %s", len(items), exc)
                return [exc] * len(items)
            log.warning("filing a batch of %d anomalies failed (%s); filing them one by one", len(items), exc)
        out: list = []
        for anomaly in items:
            try:
                out += self._file_batch([anomaly])
            except Exception as exc:  # noqa: PERF203 - isolating the one that fails is the point
                log.exception("anomaly %s could not be filed", anomaly.id)
                out.append(exc)
        return out

    def _file_batch(self, items: list[Anomaly]) -> list[TicketRef]:
        refs, pending = self._commit_many(items)
        failpoint("intake.after_commit")
        self._publish(refs, pending)
        return refs

    def _commit(self, anomaly: Anomaly, ack: Ack | None = None) -> tuple[TicketRef, Pending]:
        refs, pending = self._commit_many([anomaly], ack)
        return refs[0], pending

    def _publish(self, refs: list[TicketRef], pending: Pending) -> None:
        """Send what the commit owes Redis. An anomaly filed before arrives again when its filer died or its
        answer was lost — maybe after the commit and before the publish: then the outbox is sent at once
        (each row lands once), instead of after the relay's grace time."""
        self.outbox.publish(pending)
        if any(r.duplicate for r in refs):
            self.outbox.relay(grace_s=0)

    def _commit_many(self, anomalies: list[Anomaly], ack: tuple[str, str, str] | None = None) -> tuple[list[TicketRef], Pending]:
        for attempt in range(3):
            try:
                with self.store.write() as s:
                    numbers = CaseNumbers(self.store, s, self.cfg.case_prefix, self.cfg.timezone)
                    ctx = _BatchContext(s, anomalies, numbers)
                    staged: list[Staged | int] = []  # a result to complete after the flush, or the index of its twin
                    seen: dict[str, int] = {}
                    for i, a in enumerate(anomalies):
                        if a.id in seen:
                            # Twice in one batch: the second is a repeat of the first (its duty entry is not
                            # published yet, so the crash-repair path of _duplicate must not run for it).
                            self.stats["filed"] += 1
                            self.stats["duplicate"] += 1
                            staged.append(seen[a.id])
                            continue
                        seen[a.id] = i
                        staged.append(self._handle(s, a, ctx))
                    ctx.numbers.release_unused()
                    s.flush()  # one flush for the whole batch: new tickets get their ids, rows go in executemany
                    ctx.rows.insert(s)  # then the batch's occurrences and history rows, one INSERT each
                    refs: list[TicketRef] = []
                    effects = Effects()
                    for item in staged:
                        if isinstance(item, int):
                            refs.append(replace(refs[item], created=False, merged=False, duplicate=True))
                            continue
                        ref, eff = item()
                        refs.append(ref)
                        effects.extend(eff)
                    # What the batch owes Redis commits with it (the outbox): a kill after the commit loses nothing.
                    return refs, self.outbox.stage(s, effects, self.clock(), ack)
            except IntegrityError:
                # Another consumer filed the same anomaly id (or took the same case number) at the same moment.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -- the stream path ---------------------------------------------------------------------
    def ensure_group(self) -> None:
        self.stream.ensure_group()

    def claim_stale(self) -> list[tuple[str, dict]]:
        """Take over entries that a dead consumer read but never acknowledged."""
        return self.stream.claim_stale()

    def process_batch(self, block_ms: int = 1000) -> int:
        """Handle what is waiting (our own retried entries, re-claimed ones, then new ones); returns how many."""
        return self.stream.process_batch(self._process_entry, block_ms)

    def run_forever(self, stop_event: threading.Event, block_ms: int = 1000) -> None:
        """Process until ``stop_event`` is set; Redis and store outages are logged and retried with back-off."""
        self.stream.run_forever(stop_event, self._process_entry, block_ms)

    def _process_entry(self, entry_id: str, fields: dict, quiet: bool = False) -> Outcome:
        ack = (self.keys.anomalies, INTAKE_GROUP, entry_id)
        raw = fields.get(b"anomaly", fields.get("anomaly", b""))
        try:
            anomaly = Anomaly.from_stream(fields)
        except (ValidationError, ValueError) as exc:
            self._dead(f"invalid anomaly: {str(exc)[:500]}", raw)
            return Outcome.DONE
        if stale_owner(self.redis, self.keys.prefix, anomaly, entry_id):  # a superseded camera owner's (alerts.fencing)
            return Outcome.DONE
        try:
            ref, pending = self._commit(anomaly, ack)
        except OperationalError as exc:
            if not quiet:  # once per outage, not once per entry
                log.warning("store unavailable, anomaly %s stays pending: %s", anomaly.id, exc.orig)
            return Outcome.RETRY
        except Exception as exc:  # a bug or bad data must not block the stream: quarantine it
            log.exception("anomaly %s could not be filed", anomaly.id)
            self._dead(f"{type(exc).__name__}: {str(exc)[:500]}", raw)
            return Outcome.DONE
        failpoint("intake.after_commit")
        self._publish([ref], pending)  # its XACK travels with its duty entries and events
        return Outcome.ACKED

    def _dead(self, reason: str, raw: bytes | str) -> None:
        self.stats["dead"] += 1
        dead_letter(self.redis, self.keys, "intake", reason, raw or b"")

    # -- one anomaly, inside a transaction ----------------------------------------------------
    def _handle(self, s: Session, a: Anomaly, ctx: "_BatchContext") -> "Staged":
        """File one anomaly in the batch's transaction; what it answers is completed after the batch's flush
        (a new ticket has no id before it), so a batch needs one flush, not one per anomaly."""
        now = self.clock()
        self.stats["filed"] += 1
        # a camera anomaly of a superseded lease owner never gets here: _process_entry fenced it (alerts.fencing)
        existing = ctx.filed.get(a.id)
        if existing is not None:
            self.stats["duplicate"] += 1
            return _done(self._duplicate(s, existing))
        if a.state == "cleared":
            return _done(self._clear(s, a, now, ctx))
        cat = self.policy.classify(a)
        if a.tier == "activity":  # recorded for the camera's review timeline, never a ticket
            return _done(activity.record(s, a, self.grids, cat.code, now, self.stats))
        if a.source == "camera" and self._suppressed(s, a, now):
            self.stats["suppressed"] += 1
            return _done((TicketRef(None, None, suppressed=True), Effects(events=[(
                "anomaly.suppressed", {}, {"anomaly": {"id": a.id, "kind": a.kind, "source_id": a.source_id, "zone": a.zone}})])))
        occurred = aware(a.occurred_at)
        target = ctx.merges.target(a, cat, a.location.wgs84(), occurred)
        occ = OccurrenceRow.of(a, now, merged=target is not None)
        if target is not None:
            ctx.rows.occurrence(target, occ)  # the target may be opened earlier in this batch: id after the flush
            target.occurrence_count += 1
            target.last_seen_at = max(target.last_seen_at, occurred)
            target.updated_at = now
            self.stats["merged"] += 1

            def merged() -> tuple[TicketRef, Effects]:
                return (TicketRef(target.id, target.number, target.status, target.grid_code, target.unit_code, merged=True),
                        Effects(events=[("ticket.occurrence", ticket_summary(target), {"anomaly_id": a.id})]))
            return merged

        confirm = cat.confirm if cat.confirm is not None else a.source in self.cfg.confirm_sources
        new = NewTicket(cat, occ, now, confirm=confirm, title=a.title, description=str(a.details.get("description", "")),
                        address=a.details.get("address"), crs_in=a.location.crs)
        t, effects_of = stage_ticket(s, self.desk, new, number=ctx.numbers.take(now), rows=ctx.rows)
        self.stats["created"] += 1
        ctx.merges.opened(t)

        def created() -> tuple[TicketRef, Effects]:
            return TicketRef(t.id, t.number, t.status, t.grid_code, t.unit_code, created=True), effects_of()
        return created

    def _duplicate(self, s: Session, occ: Occurrence) -> tuple[TicketRef, Effects]:
        # Nothing to publish again: what its first filing owed Redis committed with it (the outbox sends it).
        t = s.get(Ticket, occ.ticket_id)
        return TicketRef(t.id, t.number, t.status, t.grid_code, t.unit_code, duplicate=True), Effects()

    def _suppressed(self, s: Session, a: Anomaly, now: datetime) -> bool:
        q = select(Suppression).where(Suppression.source_id == a.source_id, Suppression.kind == a.kind,
                                      Suppression.until > now)
        q = q.where(Suppression.zone.is_(None) if a.zone is None else Suppression.zone == a.zone)
        sup = s.scalars(q.limit(1)).first()
        if sup is None:
            return False
        sup.hits += 1
        return True

    def _clear(self, s: Session, a: Anomaly, now: datetime, ctx: "_BatchContext") -> tuple[TicketRef, Effects]:
        ctx.write_rows()  # its ORM rows must get ids after those of the anomalies filed before it in the batch
        q = select(Ticket).where(Ticket.status.in_(OPEN), Ticket.source_id == a.source_id, Ticket.kind == a.kind)
        if a.zone is not None:
            q = q.where(Ticket.zone == a.zone)
        t = s.scalars(q.order_by(Ticket.last_seen_at.desc()).limit(1)).first()
        if t is None:
            return TicketRef(None, None, cleared=True), Effects()
        row = OccurrenceRow.of(a, now, merged=True)
        s.add(Occurrence(ticket_id=t.id, **vars(row)))
        t.cleared_at = row.occurred_at
        cat = self.policy.category(t.category)
        out = lifecycle.apply(t, "clear", "system", now, self.policy, note=f"{a.source_id} 告警解除")
        s.add(out.history)
        effects = Effects()
        etype = "ticket.cleared"
        if cat.auto_close_on_clear:
            unit = t.unit_code
            out = lifecycle.apply(t, "auto_close", "system", now, self.policy, note="条件已恢复，自动结案")
            s.add(out.history)
            effects.ack_duty.append((unit, t.id))
            etype = "ticket.closed"
        self.stats["cleared"] += 1
        effects.events.append((etype, ticket_summary(t), {"anomaly_id": a.id}))
        return TicketRef(t.id, t.number, t.status, t.grid_code, t.unit_code, cleared=True), effects


class _BatchContext:
    """What one batch transaction loads once instead of once per anomaly: which anomaly ids are already filed,
    and the open tickets its occurrences may merge into (``MergeIndex``); plus its case numbers and bulk rows."""

    def __init__(self, s: Session, anomalies: list[Anomaly], numbers: CaseNumbers):
        self.s = s
        ids = list({a.id for a in anomalies})
        self.filed: dict[str, Occurrence] = {}
        for i in range(0, len(ids), CHUNK):
            for occ in s.scalars(select(Occurrence).where(Occurrence.anomaly_id.in_(ids[i:i + CHUNK]))):
                self.filed.setdefault(occ.anomaly_id, occ)
        # At most one new case per anomaly that is neither filed already, nor a repeat in the batch, nor a clear.
        new = {a.id for a in anomalies if a.id not in self.filed and a.state != "cleared"}
        self.numbers = numbers
        numbers.expect(len(new))
        self.rows = BulkRows()
        self.merges = MergeIndex(s, anomalies)

    def write_rows(self) -> None:
        """Flush the staged tickets and insert the bulk rows so far, for a step that adds ORM rows of its own."""
        if self.rows:
            self.s.flush()
            self.rows.insert(self.s)
