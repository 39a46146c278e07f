"""Point → grid routing on the demo district 清水区: inside, on a border, outside, and GCJ-02 input."""
from __future__ import annotations

import pytest

from alerts.intake import route_point
from ingest.geo import GeoPoint, gcj02_to_wgs84, wgs84_to_gcj02

pytestmark = pytest.mark.timeout(30)


def test_inside_a_base_grid(grids):
    grid, how = route_point(grids, GeoPoint(lon=120.105, lat=30.276))
    assert (grid.code, grid.level, how) == ("330199001001001", "grid", "base_grid")
    grid, how = route_point(grids, GeoPoint(lon=120.135, lat=30.253))
    assert grid.code == "330199002002004"


@pytest.mark.parametrize("point, expected", [
    ((120.11, 30.276), "330199001001001"),     # border between grids 1 and 2 of 清河北社区
    ((120.12, 30.26), "330199001002002"),      # border between the two streets
    ((120.11, 30.2725), "330199001001001"),    # corner shared by four grids
])
def test_shared_border_is_stable_lowest_code(grids, point, expected):
    grid, how = route_point(grids, GeoPoint(lon=point[0], lat=point[1]))
    assert (grid.code, how) == (expected, "base_grid")


def test_outside_every_base_grid_goes_to_fallback_unit(grids):
    grid, how = route_point(grids, GeoPoint(lon=120.098, lat=30.270))   # riverside margin of the district
    assert (grid.code, grid.level, how) == ("330199", "district", "fallback")


def test_outside_the_whole_district_is_not_dropped(grids):
    grid, how = route_point(grids, GeoPoint(lon=120.30, lat=30.27))
    assert (grid.code, how) == ("330199", "outside")


def test_gcj02_published_pair():
    # Published WGS-84 ↔ GCJ-02 pair (天安门, used by eviltransform/coordtransform test suites).
    lon, lat = wgs84_to_gcj02(116.397128, 39.916527)
    assert lon == pytest.approx(116.403370, abs=2e-5) and lat == pytest.approx(39.917929, abs=2e-5)
    lon, lat = gcj02_to_wgs84(116.403370, 39.917929)
    assert lon == pytest.approx(116.397128, abs=2e-5) and lat == pytest.approx(39.916527, abs=2e-5)


def test_gcj02_input_is_routed_by_its_wgs84_position(grids):
    wgs = (120.108, 30.276)                              # grid 1 of 清河北社区
    gcj = wgs84_to_gcj02(*wgs)                           # as AMap would publish it: ~450 m east
    raw, _ = route_point(grids, GeoPoint(lon=gcj[0], lat=gcj[1]))   # misread as WGS-84 it lands next door
    assert raw.code == "330199001001002"
    grid, how = route_point(grids, GeoPoint(lon=gcj[0], lat=gcj[1], crs="GCJ02"))
    assert (grid.code, how) == ("330199001001001", "base_grid")


def test_bd09_input(grids):
    from ingest.geo import gcj02_to_bd09

    bd = gcj02_to_bd09(*wgs84_to_gcj02(120.135, 30.253))
    grid, _ = route_point(grids, GeoPoint(lon=bd[0], lat=bd[1], crs="BD09"))
    assert grid.code == "330199002002004"
