"""Anomalies → tickets: idempotent, classified, routed, merged, committed, then queued, then acknowledged.

``Intake`` reads ``keys.anomalies`` through the consumer group ``intake``. For each entry it
(1) skips an anomaly id it has already filed (re-claimed entries, re-sent messages),
(2) classifies it into a category, (3) routes its WGS-84 point to a base grid — or to the fallback
(兜底) unit of the smallest enclosing level, or to the top unit when it lies outside every grid,
never dropping it, (4) merges it into an open ticket of the same camera+zone+kind, or of the same
category within ``merge_radius_m`` for alarms and sensors, within ``merge_window_s``, else opens
a ticket with deadlines, (5) commits, (6) puts the ticket on its unit's duty queue and an event
on ``keys.events``, and only then (7) XACKs the anomaly entry — all of (6) and (7) in one MULTI.
Input that cannot be used goes to the dead-letter stream and is acknowledged, so one bad entry
never blocks the stream. A database outage leaves entries pending (never acknowledged); the consumer
stops reading new entries, retries its own pending ones with back-off (0.25 s doubling to 5 s, one log
line per outage) and resumes within seconds of the store's return.

``file(anomaly)`` does the same synchronously for the one-key alarm path, which must answer the
set-top box with a case number within a second. ``file_many(anomalies)`` files a whole batch in one
transaction (group commit) and publishes its duty entries and events in one MULTI after the commit: a
burst of presses then pays the per-transaction cost (BEGIN IMMEDIATE, commit, the Redis round trip)
once per batch instead of once per press; its case numbers are reserved in one statement and its occurrence
and history rows go in with one bulk INSERT per table. Presses of one batch merge with each other exactly as if
they had been filed one after another, in the batch's order.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from collections.abc import Iterable
from typing import Any, Callable

import redis
from pydantic import ValidationError
from shapely.geometry import Point
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from alerts import activity, lifecycle
from alerts.config import AlertsConfig, CategoryConfig
from alerts.events import Effects, ensure_group
from alerts.grids import Grid, GridIndex
from alerts.lifecycle import OPEN
from alerts.models import HistoryEntry, Occurrence, Suppression, Ticket
from alerts.policy import CasePolicy
from alerts.outbox import Outbox, Pending
from alerts.store import Store
from alerts.streams import StreamKeys, dead_letter
from alerts.views import TicketRef, ticket_summary
from detectors.anomaly import Anomaly
from ingest.failpoints import failpoint
from ingest.geo import GeoPoint

log = logging.getLogger(__name__)

INTAKE_GROUP = "intake"
Clock = Callable[[], datetime]
# What filing one anomaly answers, completed after its batch's flush: (the case it landed in, what to publish).
Staged = Callable[[], "tuple[TicketRef, Effects]"]


def _done(result: "tuple[TicketRef, Effects]") -> Staged:
    return lambda: result


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RoutingError(ValueError):
    """No grid at all can take the point (the grid file is empty)."""


def route_point(grids: GridIndex, point: GeoPoint) -> tuple[Grid, str]:
    """The grid responsible for a point and how it was found: base_grid, fallback or outside."""
    base = grids.base_grid_at(point)
    if base is not None:
        return base, "base_grid"
    fb = grids.fallback_at(point)
    if fb is not None:
        return fb, "fallback"
    for level in ("district", "street", "community", "grid"):
        units = grids.level(level)
        if units:
            p = point.wgs84()
            nearest = min(units, key=lambda g: (g.geometry.distance(Point(p.lon, p.lat)), g.code))
            return nearest, "outside"
    raise RoutingError("the grid index is empty: no unit can take the case")


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
        self.batch = batch
        self.claim_idle_ms = int((claim_idle_s if claim_idle_s is not None else alerts_cfg.intake_claim_idle_s) * 1000)
        all_grids = grids.all()
        self.grid_version = all_grids[0].version if all_grids else "0"
        self._group_ready = False
        self._last_claim = 0.0
        # Set when the store refused a commit: our own pending entries are retried first (not after the
        # re-claim idle time meant for dead consumers), and the loop backs off instead of reading new entries.
        self._retry_own = False
        self.store_down = False
        self.stats = {"filed": 0, "created": 0, "merged": 0, "duplicate": 0, "suppressed": 0, "cleared": 0, "dead": 0}

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

    def _commit(self, anomaly: Anomaly, ack: tuple[str, str, str] | None = None) -> tuple[TicketRef, Pending]:
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
                    numbers = _CaseNumbers(self.store, s, self.cfg.case_prefix, self.cfg.timezone)
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
        if not self._group_ready:
            ensure_group(self.redis, self.keys.anomalies, INTAKE_GROUP)
            self._group_ready = True

    def claim_stale(self) -> list[tuple[str, dict]]:
        """Take over entries that a dead consumer read but never acknowledged."""
        self.ensure_group()
        claimed: list[tuple[str, dict]] = []
        start = "0-0"
        while True:
            reply = self.redis.xautoclaim(self.keys.anomalies, INTAKE_GROUP, self.consumer, self.claim_idle_ms,
                                          start_id=start, count=self.batch)
            start, entries = reply[0], reply[1]
            claimed += [(e[0], e[1]) for e in entries if e and e[1] is not None]
            if start in (b"0-0", "0-0") or not entries:
                break
        return claimed

    def process_batch(self, block_ms: int = 1000) -> int:
        """Handle what is waiting (re-claimed entries first, then new ones); returns how many entries were handled."""
        self.ensure_group()
        entries: list[tuple[str, dict]] = []
        if self._retry_own:
            entries += self._own_pending()
            self._retry_own = bool(entries)
        now = time.monotonic()
        if not entries and now - self._last_claim >= self.claim_idle_ms / 2000:
            self._last_claim = now
            entries += self.claim_stale()
        if not entries:
            reply = self.redis.xreadgroup(INTAKE_GROUP, self.consumer, {self.keys.anomalies: ">"},
                                          count=self.batch, block=block_ms or None)
            for _stream, items in reply or []:
                entries += [(eid, fields) for eid, fields in items if fields is not None]
        handled = 0
        was_down = self.store_down
        self.store_down = False
        for entry_id, fields in entries:
            if self._process_entry(entry_id, fields, quiet=was_down):
                handled += 1
            else:
                # The store is away: the rest of the batch stays pending to us and is retried first next time.
                self._retry_own = self.store_down = True
                break
        if was_down and not self.store_down:
            log.warning("intake: store is back; resumed filing")
        return handled

    def _own_pending(self) -> list[tuple[str, dict]]:
        """Entries this consumer read and has not acknowledged (oldest first); trimmed-away ones are acknowledged."""
        reply = self.redis.xreadgroup(INTAKE_GROUP, self.consumer, {self.keys.anomalies: "0"}, count=self.batch)
        out: list[tuple[str, dict]] = []
        for _stream, items in reply or []:
            for eid, fields in items:
                if fields:
                    out.append((eid, fields))
                else:  # the entry was trimmed from the stream (MAXLEN) while pending: nothing left to file
                    log.error("intake: pending anomaly entry %s was trimmed from the stream before it was filed", eid)
                    self.redis.xack(self.keys.anomalies, INTAKE_GROUP, eid)
        return out

    def _process_entry(self, entry_id: bytes | str, fields: dict, quiet: bool = False) -> bool:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        ack = (self.keys.anomalies, INTAKE_GROUP, eid)
        raw = fields.get(b"anomaly", fields.get("anomaly", b""))
        try:
            anomaly = Anomaly.from_stream(fields)
        except (ValidationError, ValueError) as exc:
            self._dead(ack, f"invalid anomaly: {str(exc)[:500]}", raw)
            return True
        try:
            ref, pending = self._commit(anomaly, ack)
        except OperationalError as exc:
            if not quiet:  # once per outage, not once per entry
                log.warning("store unavailable, anomaly %s stays pending: %s", anomaly.id, exc.orig)
            return False
        except Exception as exc:  # a bug or bad data must not block the stream: quarantine it
            log.exception("anomaly %s could not be filed", anomaly.id)
            self._dead(ack, f"{type(exc).__name__}: {str(exc)[:500]}", raw)
            return True
        failpoint("intake.after_commit")
        self._publish([ref], pending)
        return True

    def _dead(self, ack: tuple[str, str, str], reason: str, raw: bytes | str) -> None:
        self.stats["dead"] += 1
        dead_letter(self.redis, self.keys, "intake", reason, raw or b"")
        self.redis.xack(*ack)

    def run_forever(self, stop_event: threading.Event, block_ms: int = 1000) -> None:
        """Process until ``stop_event`` is set; Redis outages are logged and retried with back-off."""
        backoff = 0.5
        store_backoff = 0.25
        while not stop_event.is_set():
            try:
                self.process_batch(block_ms)
                backoff = 0.5
                if self.store_down:
                    stop_event.wait(store_backoff)
                    store_backoff = min(store_backoff * 2, 5.0)
                else:
                    store_backoff = 0.25
            except redis.RedisError as exc:
                log.warning("intake: redis error %s; retrying in %.1fs", exc, backoff)
                self._group_ready = False
                stop_event.wait(backoff)
                backoff = min(backoff * 2, 30)

    # -- one anomaly, inside a transaction ----------------------------------------------------
    def _handle(self, s: Session, a: Anomaly, ctx: "_BatchContext") -> "Staged":
        """File one anomaly in the batch's transaction; what it answers is completed after the batch's flush
        (a new ticket has no id before it), so a batch needs one flush, not one per anomaly."""
        now = self.clock()
        self.stats["filed"] += 1
        existing = ctx.filed.get(a.id)
        if existing is not None:
            self.stats["duplicate"] += 1
            return _done(self._duplicate(s, existing))
        if a.state == "cleared":
            return _done(self._clear(s, a, now, ctx))
        cat = self.policy.classify(a)
        if a.tier == "activity":  # recorded for the camera's review timeline, never a ticket
            return _done(activity.record(s, a, self.grids, cat.code, now, self.stats))
        point = a.location.wgs84()
        occurred = a.occurred_at if a.occurred_at.tzinfo else a.occurred_at.replace(tzinfo=timezone.utc)
        if a.source == "camera" and self._suppressed(s, a, now):
            self.stats["suppressed"] += 1
            return _done((TicketRef(None, None, suppressed=True), Effects(events=[(
                "anomaly.suppressed", {}, {"anomaly": {"id": a.id, "kind": a.kind, "source_id": a.source_id, "zone": a.zone}})])))
        target = self._merge_target(s, a, cat, point, occurred, ctx)
        occ = OccurrenceRow(anomaly_id=a.id, kind=a.kind, state=a.state, source_kind=a.source, source_id=a.source_id,
                            zone=a.zone, lon=point.lon, lat=point.lat, score=a.score, title=a.title,
                            evidence=[e.model_dump() for e in a.evidence], details=a.details,
                            observed_at=datetime.fromtimestamp(a.observed_at, timezone.utc), occurred_at=occurred,
                            received_at=now, merged=False)
        if target is not None:
            occ.merged = True
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
        t, effects_of = stage_ticket(s, self.store, self.cfg, self.policy, self.grids, self.grid_version, cat, occ, now,
                                     confirm=confirm, title=a.title, description=str(a.details.get("description", "")),
                                     address=a.details.get("address"), crs_in=a.location.crs,
                                     number=ctx.numbers.take(now), rows=ctx.rows)
        self.stats["created"] += 1
        ctx.opened(t)

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

    def _merge_target(self, s: Session, a: Anomaly, cat: CategoryConfig, point: GeoPoint, occurred: datetime,
                      ctx: "_BatchContext | None" = None) -> Ticket | None:
        if cat.merge_window_s <= 0:
            return None
        since = occurred - timedelta(seconds=cat.merge_window_s)
        if ctx is not None and a.source != "camera" and cat.merge_radius_m > 0:
            return ctx.nearest_open(cat, point, since)
        base = select(Ticket).where(Ticket.status.in_(OPEN), Ticket.category == cat.code, Ticket.last_seen_at >= since)
        if a.source == "camera":
            q = base.where(Ticket.source_id == a.source_id, Ticket.kind == a.kind,
                           Ticket.zone.is_(None) if a.zone is None else Ticket.zone == a.zone)
            return s.scalars(q.order_by(Ticket.last_seen_at.desc()).limit(1)).first()
        if cat.merge_radius_m <= 0:
            q = base.where(Ticket.source_id == a.source_id, Ticket.kind == a.kind)
            return s.scalars(q.order_by(Ticket.last_seen_at.desc()).limit(1)).first()
        dlat = cat.merge_radius_m / 111_320.0
        dlon = dlat / max(math.cos(math.radians(point.lat)), 0.01)
        q = base.where(Ticket.source_kind != "camera", Ticket.lat.between(point.lat - dlat, point.lat + dlat),
                       Ticket.lon.between(point.lon - dlon, point.lon + dlon))
        best, best_d = None, None
        for t in s.scalars(q.limit(200)):
            d = point.distance_m(GeoPoint(lon=t.lon, lat=t.lat))
            if d <= cat.merge_radius_m and (best_d is None or d < best_d):
                best, best_d = t, d
        return best

    def _clear(self, s: Session, a: Anomaly, now: datetime, ctx: "_BatchContext") -> tuple[TicketRef, Effects]:
        ctx.write_rows()  # its ORM rows must get ids after those of the anomalies filed before it in the batch
        q = select(Ticket).where(Ticket.status.in_(OPEN), Ticket.source_id == a.source_id, Ticket.kind == a.kind)
        if a.zone is not None:
            q = q.where(Ticket.zone == a.zone)
        t = s.scalars(q.order_by(Ticket.last_seen_at.desc()).limit(1)).first()
        if t is None:
            return TicketRef(None, None, cleared=True), Effects()
        point = a.location.wgs84()
        occurred = a.occurred_at if a.occurred_at.tzinfo else a.occurred_at.replace(tzinfo=timezone.utc)
        s.add(Occurrence(anomaly_id=a.id, ticket_id=t.id, kind=a.kind, state="cleared", source_kind=a.source,
                         source_id=a.source_id, zone=a.zone, lon=point.lon, lat=point.lat, score=a.score, title=a.title,
                         evidence=[e.model_dump() for e in a.evidence], details=a.details,
                         observed_at=datetime.fromtimestamp(a.observed_at, timezone.utc), occurred_at=occurred,
                         received_at=now, merged=True))
        t.cleared_at = occurred
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
    """What one batch transaction loads once instead of once per anomaly: which anomaly ids are already
    filed, and — per category that merges by radius — the open non-camera tickets near the batch's points.

    Why: the per-anomaly look-ups (and the autoflush each of them triggers) cost more than the commit
    itself; a burst of presses is one look-up per batch. Tickets opened in the batch join the index, and
    merged ones are the same ORM objects, so later anomalies of the batch see them exactly as a later
    ``file`` would. The transaction holds the write lock on SQLite, so nothing else changes them meanwhile.
    """

    CHUNK = 500  # bound the number of SQL parameters of one IN (...) on any backend

    def __init__(self, s: Session, anomalies: list[Anomaly], numbers: "_CaseNumbers"):
        self.s = s
        ids = list({a.id for a in anomalies})
        self.filed: dict[str, Occurrence] = {}
        for i in range(0, len(ids), self.CHUNK):
            for occ in s.scalars(select(Occurrence).where(Occurrence.anomaly_id.in_(ids[i:i + self.CHUNK]))):
                self.filed.setdefault(occ.anomaly_id, occ)
        # At most one new case per anomaly that is neither filed already, nor a repeat in the batch, nor a clear.
        new = {a.id for a in anomalies if a.id not in self.filed and a.state != "cleared"}
        self.numbers = numbers
        numbers.expect(len(new))
        self.rows = _Rows()
        self.points = [a.location.wgs84() for a in anomalies if a.source != "camera"]
        self.oldest = min((a.occurred_at if a.occurred_at.tzinfo else a.occurred_at.replace(tzinfo=timezone.utc)
                           for a in anomalies), default=None)
        self._near: dict[str, _NearIndex] = {}

    def _index(self, cat: CategoryConfig) -> "_NearIndex":
        index = self._near.get(cat.code)
        if index is None:
            dlat = cat.merge_radius_m / 111_320.0
            lats = [p.lat for p in self.points]
            lons = [p.lon for p in self.points]
            worst_cos = max(min(math.cos(math.radians(max(abs(min(lats)), abs(max(lats))))), 1.0), 0.01)
            dlon = dlat / worst_cos  # the widest longitude span the radius covers anywhere in the batch
            index = self._near[cat.code] = _NearIndex(dlat, dlon)
            since = self.oldest - timedelta(seconds=cat.merge_window_s)
            q = select(Ticket).where(
                Ticket.status.in_(OPEN), Ticket.category == cat.code, Ticket.last_seen_at >= since,
                Ticket.source_kind != "camera",
                Ticket.lat.between(min(lats) - dlat, max(lats) + dlat), Ticket.lon.between(min(lons) - dlon, max(lons) + dlon))
            for t in self.s.scalars(q):
                index.add(t)
        return index

    def write_rows(self) -> None:
        """Flush the staged tickets and insert the bulk rows so far, for a step that adds ORM rows of its own."""
        if self.rows.occurrences or self.rows.history:
            self.s.flush()
            self.rows.insert(self.s)

    def opened(self, t: Ticket) -> None:
        index = self._near.get(t.category)
        if index is not None and t.source_kind != "camera":
            index.add(t)

    def nearest_open(self, cat: CategoryConfig, point: GeoPoint, since: datetime) -> Ticket | None:
        """The nearest open ticket of ``cat`` within its radius seen since ``since`` (as the SQL look-up picks)."""
        best, best_d = None, None
        for t in self._index(cat).around(point.lat, point.lon):
            if t.status not in OPEN or t.category != cat.code or t.last_seen_at < since:
                continue
            d = point.distance_m(GeoPoint(lon=t.lon, lat=t.lat))
            if d <= cat.merge_radius_m and (best_d is None or d < best_d):
                best, best_d = t, d
        return best


@dataclass
class OccurrenceRow:
    """The values of one ``occurrences`` row, before its ticket has an id (attribute names as on ``Occurrence``)."""

    anomaly_id: str
    kind: str
    state: str
    source_kind: str
    source_id: str
    zone: str | None
    lon: float
    lat: float
    score: float
    title: str | None
    evidence: list[Any]
    details: dict[str, Any]
    observed_at: datetime
    occurred_at: datetime
    received_at: datetime
    merged: bool
    id = None  # not a field: never stored yet (stage_ticket asks)


class _Rows:
    """The occurrence and history rows of one batch, inserted with one Core INSERT per table after the flush.

    Why: building, tracking and flushing an ORM object per row was most of what filing a press cost after the
    commit itself; nothing in the batch reads these rows back, so they need no ORM identity. Rows keep the
    batch's order, so ids come out as they did with one ORM object per row."""

    def __init__(self) -> None:
        self.occurrences: list[tuple[Ticket, OccurrenceRow]] = []
        self.history: list[tuple[Ticket, dict[str, Any]]] = []

    def occurrence(self, t: Ticket, occ: OccurrenceRow) -> None:
        self.occurrences.append((t, occ))

    def history_entry(self, t: Ticket, values: dict[str, Any]) -> None:
        self.history.append((t, values))

    def insert(self, s: Session) -> None:
        """After the flush (every ticket has its id)."""
        if self.occurrences:
            s.execute(insert(Occurrence), [{**vars(o), "ticket_id": t.id} for t, o in self.occurrences])
        if self.history:
            s.execute(insert(HistoryEntry), [{**h, "ticket_id": t.id} for t, h in self.history])
        self.occurrences.clear()
        self.history.clear()


class _CaseNumbers:
    """The case numbers of one batch transaction: reserved in one statement, handed out in filing order.

    Why: one counter upsert per new case was a third of ``file_many``'s CPU. The first number taken reserves
    as many as the batch can open at most; what is left unused is given back before the commit (the
    transaction still holds the counter's lock), so numbers stay consecutive and gap-free exactly as when
    each case took its own. A batch that crosses local midnight reserves again for the new day."""

    def __init__(self, store: Store, s: Session, prefix: str, tz: str):
        self.store, self.s, self.prefix, self.tz = store, s, prefix, tz
        self.left = 0  # how many more cases the batch may still open (an upper bound)
        self.pools: dict[str, list[str]] = {}  # day -> reserved numbers not handed out yet, in reverse order

    def expect(self, count: int) -> None:
        self.left = count

    def take(self, at: datetime) -> str:
        day = self.store.case_day(at, self.tz)
        pool = self.pools.setdefault(day, [])
        if not pool:
            # On the session's connection, not the session: no autoflush of the batch's staged rows.
            pool.extend(reversed(self.store.next_case_numbers(self.s.connection(), self.prefix, at, self.tz,
                                                              max(self.left, 1))))
        self.left = max(self.left - 1, 0)
        return pool.pop()

    def release_unused(self) -> None:
        for day, pool in self.pools.items():
            self.store.release_case_numbers(self.s.connection(), day, len(pool))
            pool.clear()


class _NearIndex:
    """Tickets bucketed in cells one merge radius wide: a point's candidates are in its 3x3 cells."""

    def __init__(self, dlat: float, dlon: float):
        self.dlat, self.dlon = dlat, dlon
        self.cells: dict[tuple[int, int], list[Ticket]] = {}

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self.dlat), math.floor(lon / self.dlon)

    def add(self, t: Ticket) -> None:
        self.cells.setdefault(self._cell(t.lat, t.lon), []).append(t)

    def around(self, lat: float, lon: float):
        cy, cx = self._cell(lat, lon)
        for y in (cy - 1, cy, cy + 1):
            for x in (cx - 1, cx, cx + 1):
                yield from self.cells.get((y, x), ())


def stage_ticket(s: Session, store: Store, cfg: AlertsConfig, policy: CasePolicy, grids: GridIndex, grid_version: str,
                 cat: CategoryConfig, occ: Occurrence | OccurrenceRow, now: datetime, *, confirm: bool = False,
                 title: str | None = None, description: str = "", address: str | None = None, crs_in: str = "WGS84",
                 actor: str = "system", note: str | None = None, number: str | None = None,
                 rows: _Rows | None = None) -> tuple[Ticket, Callable[[], Effects]]:
    """Add a ticket for ``occ`` (routed, numbered, its clock started) without flushing; returns it and a
    function giving what to publish, to call once the session was flushed (the summaries carry the id).

    Why: a flush per ticket is most of a filing's cost; a batch stages all its tickets and flushes once.
    A new occurrence and the history rows point at the ticket through the ORM relationships; an existing
    occurrence (a split) is re-pointed by id, which needs the ticket flushed first. ``number``: a case number
    the caller reserved (a batch reserves all of its own at once); None reserves one here. ``rows``: a batch's
    bulk rows, which then take the new occurrence (an ``OccurrenceRow``) and the history rows instead of the session."""
    point = GeoPoint(lon=occ.lon, lat=occ.lat)
    grid, routed_by = route_point(grids, point)
    t = Ticket(
        # On the session's connection, not the session: the counter upsert needs no autoflush of the
        # staged rows (a batch flushes them all once).
        number=number or store.next_case_number(s.connection(), cfg.case_prefix, now, cfg.timezone),
        category=cat.code, severity=cat.severity, status="reported" if confirm else "dispatched",
        title=(title or f"{cat.name} · {occ.source_id}")[:300], description=description[:5000],
        grid_code=grid.code, grid_version=grid_version, routed_by=routed_by, unit_code=grid.code,
        escalation_level=policy.level_index(grid.level), department=cat.owner_department, police=cat.police,
        lon=occ.lon, lat=occ.lat, crs="WGS84", address=address,
        source_kind=occ.source_kind, source_id=occ.source_id, zone=occ.zone, kind=occ.kind,
        created_at=now, updated_at=now, first_seen_at=occ.occurred_at, last_seen_at=occ.occurred_at, occurrence_count=1,
        sign_overdue=False, handle_overdue=False, reminders=0, rework_count=0, extension_count=0, supervised=False)
    if not confirm:
        policy.arm_sign(t, now)
    s.add(t)
    history = [dict(at=now, actor=actor, action="create", from_status=None, to_status="reported",
                    note=note or f"接报: {occ.source_kind} {occ.source_id}", attachments=[],
                    data={"anomaly_id": occ.anomaly_id, "crs_in": crs_in, "routed_by": routed_by,
                          "grid_code": grid.code})]
    if not confirm:
        history.append(dict(at=now, actor="system", action="dispatch", from_status="reported", to_status="dispatched",
                            note=f"自动派遣至 {grid.name}", attachments=[], data={"unit_code": grid.code}))
    if rows is not None:
        rows.occurrence(t, occ)
        for h in history:
            rows.history_entry(t, h)
    else:
        if occ.id is None:
            occ.ticket = t
            s.add(occ)
        else:
            s.flush()
            occ.ticket_id = t.id
        s.add_all([HistoryEntry(ticket=t, **h) for h in history])

    def effects() -> Effects:
        out = Effects()
        summary = ticket_summary(t)
        if not confirm:
            out.duty.append((grid.code, summary, "dispatched"))
        out.events.append(("ticket.created", summary, {"anomaly_id": occ.anomaly_id}))
        return out
    return t, effects


def open_ticket(s: Session, store: Store, cfg: AlertsConfig, policy: CasePolicy, grids: GridIndex, grid_version: str,
                cat: CategoryConfig, occ: Occurrence, now: datetime, *, confirm: bool = False, title: str | None = None,
                description: str = "", address: str | None = None, crs_in: str = "WGS84",
                actor: str = "system", note: str | None = None) -> tuple[Ticket, Effects]:
    """Open a ticket for ``occ`` (not yet added): route it, number it, start its clock; returns what to publish."""
    t, effects = stage_ticket(s, store, cfg, policy, grids, grid_version, cat, occ, now, confirm=confirm, title=title,
                              description=description, address=address, crs_in=crs_in, actor=actor, note=note)
    s.flush()
    return t, effects()
