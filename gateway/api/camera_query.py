"""The camera list at scale: filter, search and page 10,000 cameras without dumping them all.

``GET /cameras`` used to serialise every camera (pydantic dump, grid lookup, health) on each call;
with a city's cameras that is seconds. Here each camera's cheap facts — its grid (a point-in-polygon
lookup) and the lower-cased text a search matches — are computed once per camera object and kept
(``CameraCatalog``); a request filters those rows, reads the health of the candidates in one Redis
MGET only when a health filter asks for it, and serialises just the page it answers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from gateway.config import Camera


@dataclass(frozen=True)
class CameraRow:
    """What a filter needs of one camera, computed once per camera object."""

    camera: Camera
    grid_code: str | None
    text: str  # id, name, grid code and grid names, lower-cased: what ``q`` searches


@dataclass(frozen=True)
class CameraQuery:
    """One list request: every field optional; ``grid`` matches the grid and everything below it."""

    q: str | None = None
    grid: str | None = None
    state: str | None = None
    host: str | None = None
    limit: int = 100
    offset: int = 0

    @property
    def needs_health(self) -> bool:
        return bool(self.state or self.host)


HEALTH_CACHE_S = 1.0  # video roles publish each camera's status every 2 s: a state filter may reuse a 1-s-old read


class CameraCatalog:
    """``CameraRow`` per camera, refreshed for a camera only when its object changes (an API edit replaces it),
    and the last health read of many cameras, reused for ``HEALTH_CACHE_S`` by the state and host filters
    (an MGET and JSON decoding of 10,000 status documents per request is most of such a request's cost)."""

    def __init__(self, grids: Any, clock: Callable[[], float] = time.monotonic):
        self.grids = grids
        self.clock = clock
        self._rows: dict[int, CameraRow] = {}
        self._health: dict[str, dict[str, Any] | None] = {}
        self._health_at = float("-inf")

    def health(self, ids: list[str], read: Callable[[list[str]], dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        """Status documents of ``ids`` (missing: no video role reported), from a read at most HEALTH_CACHE_S old."""
        fresh = self.clock() - self._health_at < HEALTH_CACHE_S
        if not (fresh and all(i in self._health for i in ids)):
            found = read(ids)
            self._health = {i: found.get(i) for i in ids}
            self._health_at = self.clock()
        return {i: doc for i in ids if (doc := self._health[i]) is not None}

    def rows(self, cameras: list[Camera]) -> list[CameraRow]:
        """Keyed by object identity: an edited camera is a new object; a row holds its camera, so ids are not reused."""
        known = self._rows
        out = [known.get(id(cam)) for cam in cameras]
        for i, row in enumerate(out):
            if row is None:
                row = out[i] = known[id(cameras[i])] = self._row(cameras[i])
        if len(known) > len(out) + 64:  # edited and removed cameras' rows go, now and then
            self._rows = {id(r.camera): r for r in out}
        return out

    def _row(self, cam: Camera) -> CameraRow:
        grid = self.grids.route(cam.pose.position)
        code = grid.code if grid else None
        names = [g.name for g in self.grids.ancestors(code)] if code else []
        return CameraRow(cam, code, " ".join([cam.id, cam.name, code or "", *names]).lower())


def select(rows: list[CameraRow], query: CameraQuery, visible: Callable[[str | None], bool],
           health_of: Callable[[list[str]], dict[str, dict[str, Any]]]) -> tuple[list[CameraRow], int]:
    """The page of rows the query asks for and how many rows matched in all (for the pager)."""
    needle = query.q.strip().lower() if query.q else ""
    hits = [r for r in rows if visible(r.grid_code)
            and (not query.grid or (r.grid_code or "").startswith(query.grid))
            and (not needle or needle in r.text)]
    if query.needs_health:
        health = health_of([r.camera.id for r in hits])
        hits = [r for r in hits if _health_matches(health.get(r.camera.id), query)]
    return hits[query.offset:query.offset + query.limit], len(hits)


def _health_matches(raw: dict[str, Any] | None, query: CameraQuery) -> bool:
    state = (raw or {}).get("state", "not reported")
    if query.state and state != query.state:
        return False
    if query.host:
        owner = raw or {}
        return query.host in (owner.get("owner_host"), owner.get("host"), owner.get("worker"), owner.get("owner"))
    return True
