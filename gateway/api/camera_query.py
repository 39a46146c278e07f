"""The camera list at scale: filter, search and page 10,000 cameras without dumping them all.

``GET /cameras`` used to serialise every camera (pydantic dump, grid lookup, health) on each call;
with a city's cameras that is seconds. Here each camera's cheap facts — its grid (a point-in-polygon
lookup) and the lower-cased text a search matches — are computed once per camera object and kept
(``CameraCatalog``); a request filters those rows, reads the health of the candidates in one Redis
MGET only when a health filter asks for it, and serialises just the page it answers.
"""
from __future__ import annotations

import threading
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
HEALTH_STALE_S = 5.0  # an older read is still answered while a fresh one is made beside the request, up to this age


class CameraCatalog:
    """``CameraRow`` per camera, refreshed for a camera only when its object changes (an API edit replaces it),
    and the last health read of many cameras, reused by the state and host filters (an MGET and JSON decoding of
    10,000 status documents is ~200 ms, most of such a request's cost). A read older than ``HEALTH_CACHE_S`` is
    renewed beside the requests, which keep the older one until then (at most ``HEALTH_STALE_S``): otherwise the
    request that happens to come after each second pays the whole read, and that was the filter's p99."""

    def __init__(self, grids: Any, clock: Callable[[], float] = time.monotonic):
        self.grids = grids
        self.clock = clock
        self._rows: dict[int, CameraRow] = {}
        self._health: dict[str, dict[str, Any] | None] = {}
        self._health_at = float("-inf")
        self._renewing = threading.Lock()  # held while a read runs beside the requests

    def health(self, ids: list[str], read: Callable[[list[str]], dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        """Status documents of ``ids`` (missing: no video role reported), from a read at most HEALTH_STALE_S old
        and, where one is older than HEALTH_CACHE_S, with a fresh read started."""
        age = self.clock() - self._health_at
        health = self._health
        if not all(i in health for i in ids) or age >= HEALTH_STALE_S:
            health = self._read(ids, read)
        elif age >= HEALTH_CACHE_S and self._renewing.acquire(blocking=False):
            threading.Thread(target=self._renew, args=(ids, read), name="camera-health", daemon=True).start()
        return {i: doc for i in ids if (doc := health[i]) is not None}

    def _read(self, ids: list[str], read: Callable[[list[str]], dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any] | None]:
        found = read(ids)
        health = {i: found.get(i) for i in ids}
        self._health, self._health_at = health, self.clock()
        return health

    def _renew(self, ids: list[str], read: Callable[[list[str]], dict[str, dict[str, Any]]]) -> None:
        try:
            self._read(ids, read)
        finally:
            self._renewing.release()

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
