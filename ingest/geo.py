"""Coordinates with their reference system, converted to WGS-84 on the way in.

Chinese web maps publish positions in GCJ-02 (AMap, Tencent) or BD-09 (Baidu); GridWatch stores
WGS-84 only, so every point that enters carries its CRS and is converted here, once.
The transforms are prcoords' (the published GCJ-02 polynomial and BD-09 rotation; the inverses are
iterated to sub-millimetre accuracy).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Literal

import prcoords

from pydantic import BaseModel, ConfigDict, Field

CRS = Literal["WGS84", "GCJ02", "BD09"]


# prcoords keeps the published GCJ-02/BD-09 polynomials and their iterative inverses; it takes and returns
# (lat, lon), GridWatch's functions take and return (lon, lat) as GeoJSON does. Its inverse agrees with the
# forward transform to < 1e-9 degrees (sub-millimetre), and it leaves points outside China unchanged.
def _lon_lat(convert: Callable[[tuple[float, float]], Any]) -> Callable[[float, float], tuple[float, float]]:
    def lon_lat(lon: float, lat: float) -> tuple[float, float]:
        out = convert((lat, lon))
        return out.lon, out.lat

    return lon_lat


wgs84_to_gcj02 = _lon_lat(prcoords.wgs_gcj)
gcj02_to_wgs84 = _lon_lat(prcoords.gcj_wgs_bored)
bd09_to_gcj02 = _lon_lat(prcoords.bd_gcj)
gcj02_to_bd09 = _lon_lat(prcoords.gcj_bd)


class GeoPoint(BaseModel):
    """A longitude/latitude pair that knows its CRS. ``wgs84()`` is what the rest of GridWatch uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: CRS = "WGS84"

    def wgs84(self) -> "GeoPoint":
        if self.crs == "WGS84":
            return self
        lon, lat = self.lon, self.lat
        if self.crs == "BD09":
            lon, lat = bd09_to_gcj02(lon, lat)
        lon, lat = gcj02_to_wgs84(lon, lat)
        return GeoPoint(lon=lon, lat=lat, crs="WGS84")

    def distance_m(self, other: "GeoPoint") -> float:
        """Great-circle distance in metres (haversine), both points taken in WGS-84."""
        a, b = self.wgs84(), other.wgs84()
        p1, p2 = math.radians(a.lat), math.radians(b.lat)
        dp, dl = p2 - p1, math.radians(b.lon - a.lon)
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * 6371008.8 * math.asin(math.sqrt(h))
