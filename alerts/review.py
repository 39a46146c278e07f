"""The review view: alerts (camera and other tickets) and activity records as one stream of items.

Why one stream: a monitoring room reviews a camera's history as a timeline of what it saw, the tickets it
raised and the activity it only recorded, each with its evidence (Frigate's alerts vs detections). Both come
from the store: an alert item is a ticket (at its first occurrence), an activity item an ``activity`` row.
Items are ordered by ``(at, tier, id)``; a cursor is that key of the last item of a page, so paging is
stable while new items arrive. Visibility follows tickets: a ticket by its grid or responsible unit, an
activity row by the grid its point routed to.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Literal

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import selectinload

from alerts.models import Activity, Occurrence, Ticket
from alerts.store import Store
from alerts.views import iso

Tier = Literal["alert", "activity"]
_RANK = {"activity": 0, "alert": 1}  # tie-break between tables at the same instant
CAUSE_KEYS = ("track_id", "label", "object", "dwell_s", "count", "min_count", "zone", "line", "direction", "rule",
              "boxes", "reason", "cue", "area", "duration_s", "speed")


class BadCursor(ValueError):
    """A ``before`` value that this module did not hand out."""


@dataclass(frozen=True)
class Cursor:
    at: datetime
    tier: Tier
    id: int

    def encode(self) -> str:
        raw = f"{self.at.astimezone(timezone.utc).isoformat()}|{self.tier}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            at, tier, num = raw.split("|")
            when = datetime.fromisoformat(at)
            if when.tzinfo is None or tier not in _RANK:
                raise ValueError(raw)
            return cls(when, tier, int(num))  # type: ignore[arg-type]
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadCursor("before: not a cursor from a previous page") from None

    def key(self) -> tuple[datetime, int, int]:
        return self.at, _RANK[self.tier], self.id


@dataclass(frozen=True)
class ReviewFilter:
    """What to list. ``visible``: the grid codes the caller may see (None: all); ``grid``: narrow to a code prefix."""

    tier: Tier | None = None
    camera_id: str | None = None
    visible: tuple[str, ...] | None = None
    grid: str | None = None
    kind: str | None = None
    status: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None


def cause_of(details: dict[str, Any]) -> dict[str, Any]:
    """Why the rule fired, from an anomaly's details: a rule's own ``cause`` or the known cause fields."""
    cause = details.get("cause")
    if isinstance(cause, dict):
        return cause
    return {k: details[k] for k in CAUSE_KEYS if details.get(k) is not None}


def _media(evidence: list[dict[str, Any]], base: str) -> tuple[str | None, str | None]:
    snap = clip = None
    for i, e in enumerate(evidence or []):
        ctype = str(e.get("content_type", ""))
        if snap is None and e.get("kind") == "snapshot" and ctype.startswith("image/"):
            snap = f"{base}/{i}"
        if clip is None and e.get("kind") == "clip":
            clip = f"{base}/{i}"
    return snap, clip


def alert_item(t: Ticket) -> dict[str, Any]:
    first: Occurrence | None = t.occurrences[0] if t.occurrences else None
    details = first.details if first is not None else {}
    snap, clip = _media(first.evidence if first is not None else [], f"/tickets/{t.id}/evidence")
    return {
        "id": f"alert:{t.id}", "tier": "alert", "camera_id": t.source_id if t.source_kind == "camera" else None,
        "grid": t.grid_code, "kind": t.kind, "category": t.category, "at": iso(t.first_seen_at), "title": t.title,
        "score": first.score if first is not None else None, "cause": cause_of(details or {}),
        "ticket": {"number": t.number, "status": t.status}, "snapshot_url": snap, "clip_url": clip,
    }


def activity_item(r: Activity) -> dict[str, Any]:
    snap, clip = _media(r.evidence, f"/activity/{r.id}/evidence")
    return {
        "id": f"activity:{r.id}", "tier": "activity", "camera_id": r.source_id if r.source_kind == "camera" else None,
        "grid": r.grid_code, "kind": r.kind, "category": r.category, "at": iso(r.occurred_at),
        "title": r.title or r.kind, "score": r.score, "cause": cause_of(r.details or {}), "ticket": None,
        "snapshot_url": snap, "clip_url": clip,
    }


def _visible_tickets(codes: Iterable[str]):
    codes = [c for c in codes if c]
    return or_(*[Ticket.grid_code.startswith(c) for c in codes], *[Ticket.unit_code.startswith(c) for c in codes])


def _after_cursor(at_col, id_col, rank: int, cur: Cursor, newest_first: bool):
    """Rows of one table (its tier ``rank``) strictly past the cursor in the listing's order."""
    c_at, c_rank, c_id = cur.key()
    if newest_first:
        if rank < c_rank:
            return at_col <= c_at
        if rank > c_rank:
            return at_col < c_at
        return or_(at_col < c_at, and_(at_col == c_at, id_col < c_id))
    if rank > c_rank:
        return at_col >= c_at
    if rank < c_rank:
        return at_col > c_at
    return or_(at_col > c_at, and_(at_col == c_at, id_col > c_id))


def _shared_filters(q: Select, table: type[Ticket] | type[Activity], at_col: Any, tier: str, f: ReviewFilter,
                    cur: Cursor | None, newest_first: bool) -> Select:
    """The filters both tiers apply alike (camera, kind, time window, cursor) and their common ``(at, id)`` order.

    One function, because the merged page's cursor and time window must mean the same in both tables;
    ``at_col`` is the table's time (a ticket's first sighting, an activity's occurrence)."""
    if f.camera_id is not None:
        q = q.where(table.source_kind == "camera", table.source_id == f.camera_id)
    if f.kind:
        q = q.where(table.kind == f.kind)
    if f.since is not None:
        q = q.where(at_col >= f.since)
    if f.until is not None:
        q = q.where(at_col < f.until)
    if cur is not None:
        q = q.where(_after_cursor(at_col, table.id, _RANK[tier], cur, newest_first))
    order = (at_col.desc(), table.id.desc()) if newest_first else (at_col, table.id)
    return q.order_by(*order)


def _ticket_query(f: ReviewFilter, cur: Cursor | None, newest_first: bool) -> Select:
    q = select(Ticket).options(selectinload(Ticket.occurrences))
    q = q.where(Ticket.status.in_(f.status)) if f.status else q.where(Ticket.status != "merged")
    if f.visible is not None:
        q = q.where(_visible_tickets(f.visible))
    if f.grid:
        q = q.where(or_(Ticket.grid_code.startswith(f.grid), Ticket.unit_code.startswith(f.grid)))
    return _shared_filters(q, Ticket, Ticket.first_seen_at, "alert", f, cur, newest_first)


def _activity_query(f: ReviewFilter, cur: Cursor | None, newest_first: bool) -> Select:
    q = select(Activity)
    if f.visible is not None:
        codes = [c for c in f.visible if c]
        q = q.where(or_(*[Activity.grid_code.startswith(c) for c in codes]))
    if f.grid:
        q = q.where(Activity.grid_code.startswith(f.grid))
    return _shared_filters(q, Activity, Activity.occurred_at, "activity", f, cur, newest_first)


def _key(item: dict[str, Any]) -> tuple[datetime, int, int]:
    tier, num = item["id"].split(":")
    return datetime.fromisoformat(item["at"]), _RANK[tier], int(num)


def review_items(store: Store, f: ReviewFilter, *, limit: int = 50, before: Cursor | None = None,
                 newest_first: bool = True) -> tuple[list[dict[str, Any]], Cursor | None]:
    """One page of items in ``(at, tier, id)`` order and the cursor of the next page (None: this was the last)."""
    if f.visible is not None and not [c for c in f.visible if c]:
        return [], None
    limit = max(1, min(int(limit), 500))
    items: list[dict[str, Any]] = []
    with store.read() as s:
        if f.tier in (None, "alert"):
            items += [alert_item(t) for t in s.scalars(_ticket_query(f, before, newest_first).limit(limit + 1))]
        if f.tier in (None, "activity") and not f.status:  # activity has no ticket status
            items += [activity_item(r) for r in s.scalars(_activity_query(f, before, newest_first).limit(limit + 1))]
    items.sort(key=_key, reverse=newest_first)
    page, more = items[:limit], len(items) > limit
    if not more or not page:
        return page, None
    at, _rank, num = _key(page[-1])
    return page, Cursor(at, page[-1]["tier"], num)


def activity_evidence(store: Store, activity_id: int, visible: Iterable[str] | None) -> list[dict[str, Any]] | None:
    """The evidence list of one activity row, or None when it does not exist or lies outside ``visible``."""
    with store.read() as s:
        r = s.get(Activity, activity_id)
        if r is None:
            return None
        if visible is not None and not any(c and (r.grid_code or "").startswith(c) for c in visible):
            return None
        return list(r.evidence or [])
