"""Which open ticket a new occurrence joins: the one merge path for camera, alarm, sensor and report occurrences.

Within its category's ``merge_window_s`` (since the ticket was last seen) an occurrence joins

* a camera's: the open ticket of the same camera, kind and zone (the most recently seen);
* any other source's, when the category merges by place (``merge_radius_m`` > 0): the nearest open
  non-camera ticket of the category within the radius (neighbours pressing about the same fire);
* any other source's, when it does not (radius 0): the open ticket of the same source and kind.

``MergeIndex`` answers for a whole batch from what it loads once per category: the open tickets a batch
could join (by source id for the first and last rule, in cells one radius wide for the second). Why: the
per-anomaly look-ups (and the autoflush each triggers) cost more than the commit; a burst of presses is one
look-up per category. Tickets opened in the batch join the index, and merged ones are the same ORM objects,
so later anomalies of the batch see them exactly as a later filing would. The transaction holds the write
lock on SQLite (row locks on PostgreSQL are taken by the writers that change them), so nothing else changes
them meanwhile.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.config import CategoryConfig
from alerts.filing import aware
from alerts.lifecycle import OPEN
from alerts.models import Ticket
from ingest.anomaly import Anomaly
from ingest.geo import GeoPoint

CHUNK = 500  # bound the number of SQL parameters of one IN (...) on any backend


def by_place(a: Anomaly, cat: CategoryConfig) -> bool:
    """Whether ``a`` merges by distance (else by its source)."""
    return a.source != "camera" and cat.merge_radius_m > 0


class _Cells:
    """Tickets bucketed in cells one merge radius wide: a point's candidates are in its 3x3 cells."""

    def __init__(self, dlat: float, dlon: float):
        self.dlat, self.dlon = dlat, dlon
        self.cells: dict[tuple[int, int], list[Ticket]] = {}

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self.dlat), math.floor(lon / self.dlon)

    def add(self, t: Ticket) -> None:
        self.cells.setdefault(self._cell(t.lat, t.lon), []).append(t)

    def around(self, lat: float, lon: float) -> Iterator[Ticket]:
        cy, cx = self._cell(lat, lon)
        for y in (cy - 1, cy, cy + 1):
            for x in (cx - 1, cx, cx + 1):
                yield from self.cells.get((y, x), ())


class MergeIndex:
    """The open tickets one batch's occurrences may join; ``target`` answers for each occurrence in turn."""

    def __init__(self, s: Session, anomalies: list[Anomaly]):
        self.s = s
        self.points = [a.location.wgs84() for a in anomalies if a.source != "camera"]
        self.sources = sorted({a.source_id for a in anomalies})
        self.oldest = min((aware(a.occurred_at) for a in anomalies), default=None)
        self._near: dict[str, _Cells] = {}
        self._same: dict[str, dict[str, list[Ticket]]] = {}

    def target(self, a: Anomaly, cat: CategoryConfig, point: GeoPoint, occurred: datetime) -> Ticket | None:
        """The open ticket ``a`` (at ``point``, occurred at ``occurred``) joins, or None: it opens its own."""
        if cat.merge_window_s <= 0:
            return None
        since = occurred - timedelta(seconds=cat.merge_window_s)

        def live(t: Ticket) -> bool:
            return t.status in OPEN and t.category == cat.code and t.last_seen_at >= since

        if by_place(a, cat):
            best, best_d = None, None
            for t in self._cells(cat).around(point.lat, point.lon):
                if not live(t):
                    continue
                d = point.distance_m(GeoPoint(lon=t.lon, lat=t.lat))
                if d <= cat.merge_radius_m and (best_d is None or d < best_d):
                    best, best_d = t, d
            return best
        same = [t for t in self._by_source(cat).get(a.source_id, ()) if live(t) and t.kind == a.kind
                and (a.source != "camera" or t.zone == a.zone)]
        return max(same, key=lambda t: t.last_seen_at, default=None)

    def opened(self, t: Ticket) -> None:
        """A ticket opened in this batch: later occurrences of the batch may join it."""
        cells = self._near.get(t.category)
        if cells is not None and t.source_kind != "camera":
            cells.add(t)
        same = self._same.get(t.category)
        if same is not None:
            same.setdefault(t.source_id, []).append(t)

    def _since(self, cat: CategoryConfig) -> datetime:
        return self.oldest - timedelta(seconds=cat.merge_window_s)

    def _by_source(self, cat: CategoryConfig) -> dict[str, list[Ticket]]:
        index = self._same.get(cat.code)
        if index is None:
            index = self._same[cat.code] = {}
            for i in range(0, len(self.sources), CHUNK):
                q = select(Ticket).where(Ticket.status.in_(OPEN), Ticket.category == cat.code,
                                         Ticket.last_seen_at >= self._since(cat),
                                         Ticket.source_id.in_(self.sources[i:i + CHUNK]))
                for t in self.s.scalars(q):
                    index.setdefault(t.source_id, []).append(t)
        return index

    def _cells(self, cat: CategoryConfig) -> _Cells:
        index = self._near.get(cat.code)
        if index is None:
            dlat = cat.merge_radius_m / 111_320.0
            lats = [p.lat for p in self.points]
            lons = [p.lon for p in self.points]
            worst_cos = max(min(math.cos(math.radians(max(abs(min(lats)), abs(max(lats))))), 1.0), 0.01)
            dlon = dlat / worst_cos  # the widest longitude span the radius covers anywhere in the batch
            index = self._near[cat.code] = _Cells(dlat, dlon)
            q = select(Ticket).where(
                Ticket.status.in_(OPEN), Ticket.category == cat.code, Ticket.last_seen_at >= self._since(cat),
                Ticket.source_kind != "camera",
                Ticket.lat.between(min(lats) - dlat, max(lats) + dlat), Ticket.lon.between(min(lons) - dlon, max(lons) + dlon))
            for t in self.s.scalars(q):
                index.add(t)
        return index
