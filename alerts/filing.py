"""Opening a ticket: routed to the grid responsible for its point, numbered, its first steps through the lifecycle.

``stage_ticket(s, desk, NewTicket(...))`` is the one way a ticket comes to exist (intake for every source, and
the case service when an occurrence is split off). ``Desk`` carries what the process holds for it (store,
configuration, policy, grids); ``NewTicket`` carries what is particular to this ticket. Routing never
drops a point: a base grid, else the fallback (兜底) unit of the smallest enclosing level, else the nearest
top unit. The bulk-row and case-number helpers let a batch of filings pay one flush, one INSERT per table
and one counter upsert instead of one per ticket.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from shapely.geometry import Point
from sqlalchemy import insert
from sqlalchemy.orm import Session

from alerts import lifecycle
from alerts.config import AlertsConfig, CategoryConfig
from alerts.events import Effects
from alerts.grids import Grid, GridIndex
from alerts.models import HistoryEntry, Occurrence, Ticket
from alerts.policy import CasePolicy
from alerts.store import Store
from alerts.views import ticket_summary
from ingest.anomaly import Anomaly
from ingest.geo import GeoPoint

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(at: datetime) -> datetime:
    """A naive time from a source is taken as UTC (every stored time is aware)."""
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


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


@dataclass(frozen=True)
class Desk:
    """What opening a ticket needs from the process: the store (case numbers), the configuration, the policy,
    the grids and the grid version tickets are routed with."""

    store: Store
    cfg: AlertsConfig
    policy: CasePolicy
    grids: GridIndex
    grid_version: str

    @classmethod
    def of(cls, store: Store, cfg: AlertsConfig, policy: CasePolicy, grids: GridIndex) -> "Desk":
        all_grids = grids.all()
        return cls(store, cfg, policy, grids, all_grids[0].version if all_grids else "0")


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

    @classmethod
    def of(cls, a: Anomaly, now: datetime, *, merged: bool = False) -> "OccurrenceRow":
        """The occurrence an anomaly makes, received at ``now``."""
        point = a.location.wgs84()
        return cls(anomaly_id=a.id, kind=a.kind, state=a.state, source_kind=a.source, source_id=a.source_id,
                   zone=a.zone, lon=point.lon, lat=point.lat, score=a.score, title=a.title,
                   evidence=[e.model_dump() for e in a.evidence], details=a.details,
                   observed_at=datetime.fromtimestamp(a.observed_at, timezone.utc), occurred_at=aware(a.occurred_at),
                   received_at=now, merged=merged)


@dataclass
class NewTicket:
    """One ticket to open: its category, the occurrence it starts from and what a person sees of it.

    ``confirm``: an operator confirms it before it is dispatched (else it is dispatched to its grid at once);
    ``crs_in``: the coordinate system the point came in (kept in the history); ``actor``/``note``: who opened
    it and why (the first history row)."""

    cat: CategoryConfig
    occ: Occurrence | OccurrenceRow
    now: datetime
    confirm: bool = False
    title: str | None = None
    description: str = ""
    address: str | None = None
    crs_in: str = "WGS84"
    actor: str = "system"
    note: str | None = None


class BulkRows:
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

    def __bool__(self) -> bool:
        return bool(self.occurrences or self.history)

    def insert(self, s: Session) -> None:
        """After the flush (every ticket has its id)."""
        if self.occurrences:
            s.execute(insert(Occurrence), [{**vars(o), "ticket_id": t.id} for t, o in self.occurrences])
        if self.history:
            s.execute(insert(HistoryEntry), [{**h, "ticket_id": t.id} for t, h in self.history])
        self.occurrences.clear()
        self.history.clear()


class CaseNumbers:
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


def stage_ticket(s: Session, desk: Desk, new: NewTicket, *, number: str | None = None,
                 rows: BulkRows | None = None) -> tuple[Ticket, Callable[[], Effects]]:
    """Add a ticket for ``new.occ`` (routed, numbered, created and — unless it needs confirming — dispatched
    through the lifecycle) without flushing; returns it and a function giving what to publish, to call once
    the session was flushed (the summaries carry the id).

    Why: a flush per ticket is most of a filing's cost; a batch stages all its tickets and flushes once.
    A new occurrence and the history rows point at the ticket through the ORM relationships; an existing
    occurrence (a split) is re-pointed by id, which needs the ticket flushed first. ``number``: a case number
    the caller reserved (a batch reserves all of its own at once); None reserves one here. ``rows``: a batch's
    bulk rows, which then take the new occurrence (an ``OccurrenceRow``) and the history rows instead of the session."""
    occ, cat, now = new.occ, new.cat, new.now
    grid, routed_by = route_point(desk.grids, GeoPoint(lon=occ.lon, lat=occ.lat))
    t = Ticket(
        # On the session's connection, not the session: the counter upsert needs no autoflush of the
        # staged rows (a batch flushes them all once).
        number=number or desk.store.next_case_number(s.connection(), desk.cfg.case_prefix, now, desk.cfg.timezone),
        category=cat.code, severity=cat.severity,
        title=(new.title or f"{cat.name} · {occ.source_id}")[:300], description=new.description[:5000],
        grid_code=grid.code, grid_version=desk.grid_version, routed_by=routed_by, unit_code=grid.code,
        escalation_level=desk.policy.level_index(grid.level), department=cat.owner_department, police=cat.police,
        lon=occ.lon, lat=occ.lat, crs="WGS84", address=new.address,
        source_kind=occ.source_kind, source_id=occ.source_id, zone=occ.zone, kind=occ.kind,
        created_at=now, updated_at=now, first_seen_at=occ.occurred_at, last_seen_at=occ.occurred_at, occurrence_count=1,
        sign_overdue=False, handle_overdue=False, reminders=0, rework_count=0, extension_count=0, supervised=False)
    history = lifecycle.create(t, now, desk.policy, confirm=new.confirm, unit_name=grid.name, actor=new.actor,
                               note=new.note or f"接报: {occ.source_kind} {occ.source_id}",
                               data={"anomaly_id": occ.anomaly_id, "crs_in": new.crs_in, "routed_by": routed_by,
                                     "grid_code": grid.code})
    dispatched = t.status == "dispatched"  # on its duty queue now, whatever a later anomaly of the batch does
    s.add(t)
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
        if dispatched:
            out.duty.append((grid.code, summary, "dispatched"))
        out.events.append(("ticket.created", summary, {"anomaly_id": occ.anomaly_id}))
        return out
    return t, effects


def open_ticket(s: Session, desk: Desk, new: NewTicket) -> tuple[Ticket, Effects]:
    """Open a ticket for ``new.occ`` now (flushed): route it, number it, start its clock; returns what to publish."""
    t, effects = stage_ticket(s, desk, new)
    s.flush()
    return t, effects()
