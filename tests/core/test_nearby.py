"""Which cameras show an alarm's household: facing it first, then nearest, within range."""
from __future__ import annotations

from detectors.nearby import bearing_deg, cameras_seeing, in_view
from ingest.config import GeoPose
from ingest.geo import GeoPoint

HOME = GeoPoint(lon=120.1052, lat=30.2761)


def pose(lon: float, lat: float, bearing: float, fov: float = 90) -> GeoPose:
    return GeoPose(position=GeoPoint(lon=lon, lat=lat), bearing_deg=bearing, fov_deg=fov)


def test_bearing_points_the_right_way():
    origin = GeoPoint(lon=120.0, lat=30.0)
    assert abs(bearing_deg(origin, GeoPoint(lon=120.0, lat=30.01)) - 0) < 0.1
    assert abs(bearing_deg(origin, GeoPoint(lon=120.01, lat=30.0)) - 90) < 0.1
    assert abs(bearing_deg(origin, GeoPoint(lon=120.0, lat=29.99)) - 180) < 0.1


def test_a_camera_facing_the_point_beats_a_nearer_one_facing_away():
    facing = pose(120.1052, 30.2752, bearing=0)          # ~100 m south, looking north at the home
    away = pose(120.1052, 30.2757, bearing=180)          # ~45 m south, looking further south
    far = pose(120.1200, 30.2761, bearing=270)           # ~1.4 km east: out of range
    assert in_view(facing, HOME) and not in_view(away, HOME)
    assert cameras_seeing([("away", away), ("facing", facing), ("far", far)], HOME) == ["facing", "away"]
    assert cameras_seeing([("away", away), ("facing", facing)], HOME, limit=1) == ["facing"]
