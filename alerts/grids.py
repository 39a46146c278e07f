"""The grid hierarchy (district → street → community → base grid) and point → grid routing.

Grids come from a GeoJSON FeatureCollection whose features carry ``code``, ``name``, ``level`` and
``parent``. Base-grid lookup uses a shapely 2 STRtree. A point in no base grid is never dropped:
it goes to the fallback (兜底) unit of the smallest enclosing level.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from ingest.geo import GeoPoint

LEVELS = ("district", "street", "community", "grid")
CODE_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}


class GridError(ValueError):
    """The grid file is malformed; the message names the feature and what is wrong."""


@dataclass(frozen=True)
class Grid:
    code: str
    name: str
    level: str
    parent: str | None
    geometry: BaseGeometry = field(repr=False, compare=False)
    version: str = "1"

    def to_feature(self) -> dict:
        return {
            "type": "Feature",
            "properties": {"code": self.code, "name": self.name, "level": self.level, "parent": self.parent, "version": self.version},
            "geometry": shapely.geometry.mapping(self.geometry),
        }


def _check_rings(geom: dict, where: str) -> None:
    if geom.get("type") not in ("Polygon", "MultiPolygon"):
        raise GridError(f"{where}: geometry must be Polygon or MultiPolygon, not {geom.get('type')!r}")
    polygons = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    for poly in polygons:
        for ring in poly:
            if len(ring) < 4:
                raise GridError(f"{where}: a ring needs at least 4 positions, has {len(ring)}")
            if list(ring[0]) != list(ring[-1]):
                raise GridError(f"{where}: polygon ring does not close (first {ring[0]} != last {ring[-1]})")


def _parse_feature(feature: dict, index: int, version: str) -> Grid:
    props = feature.get("properties") or {}
    where = f"feature {index} ({props.get('code', 'no code')})"
    code, level = str(props.get("code", "")), props.get("level")
    if level not in LEVELS:
        raise GridError(f"{where}: level must be one of {', '.join(LEVELS)}, not {level!r}")
    if not code.isdigit() or len(code) != CODE_LENGTH[level]:
        raise GridError(f"{where}: a {level} code has {CODE_LENGTH[level]} digits, got {code!r}")
    _check_rings(feature.get("geometry") or {}, where)
    geom = shape(feature["geometry"])
    if not geom.is_valid:
        raise GridError(f"{where}: invalid polygon ({shapely.is_valid_reason(geom)})")
    parent = props.get("parent")
    return Grid(code, str(props.get("name", code)), level, str(parent) if parent else None, geom, version)


class GridIndex:
    """All grids of one version, with fast point lookups."""

    def __init__(self, grids: Iterable[Grid]):
        self._by_code = {g.code: g for g in grids}
        for g in self._by_code.values():
            if g.parent and g.parent not in self._by_code:
                raise GridError(f"grid {g.code}: parent {g.parent} is not in the file")
            if g.parent and not g.code.startswith(g.parent):
                raise GridError(f"grid {g.code}: code must start with its parent's code {g.parent}")
        self._levels = {lvl: [g for g in self._by_code.values() if g.level == lvl] for lvl in LEVELS}
        self._trees = {lvl: shapely.STRtree([g.geometry for g in gs]) for lvl, gs in self._levels.items() if gs}

    def all(self) -> list[Grid]:
        return list(self._by_code.values())

    def get(self, code: str) -> Grid | None:
        return self._by_code.get(code)

    def level(self, level: str) -> list[Grid]:
        return self._levels[level]

    def _at(self, level: str, point: GeoPoint) -> Grid | None:
        tree = self._trees.get(level)
        if tree is None:
            return None
        p = point.wgs84()
        hits = tree.query(Point(p.lon, p.lat), predicate="intersects")
        if len(hits) == 0:
            return None
        # On a shared border several grids touch the point: the lowest code wins, so the answer is stable.
        return min((self._levels[level][i] for i in hits), key=lambda g: g.code)

    def base_grid_at(self, point: GeoPoint) -> Grid | None:
        return self._at("grid", point)

    def fallback_at(self, point: GeoPoint) -> Grid | None:
        """The smallest enclosing unit above the base grids, whose fallback (兜底) desk takes the case."""
        for level in ("community", "street", "district"):
            hit = self._at(level, point)
            if hit is not None:
                return hit
        return None

    def route(self, point: GeoPoint) -> Grid | None:
        return self.base_grid_at(point) or self.fallback_at(point)

    def ancestors(self, code: str) -> list[Grid]:
        """The grid itself, then its parent, up to the district."""
        chain, grid = [], self._by_code.get(code)
        while grid is not None:
            chain.append(grid)
            grid = self._by_code.get(grid.parent) if grid.parent else None
        return chain

    def within(self, code: str) -> set[str]:
        """Codes of the grid and everything below it (a user with a community sees its base grids)."""
        return {c for c in self._by_code if c.startswith(code)}

    def to_geojson(self) -> dict:
        return {"type": "FeatureCollection", "features": [g.to_feature() for g in self._by_code.values()]}


def load_grid_file(path: Path, version: str = "1") -> GridIndex:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise GridError(f"cannot read grid file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise GridError(f"grid file {path} is not JSON: {exc}") from None
    if data.get("type") != "FeatureCollection":
        raise GridError(f"grid file {path} must be a GeoJSON FeatureCollection")
    return GridIndex(_parse_feature(f, i, version) for i, f in enumerate(data.get("features", [])))
