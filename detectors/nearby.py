"""Which cameras can see a place, and their snapshot of it at this moment.

A one-key alarm (or any report at a point) is worth more with pictures of the spot taken when it
happened. Cameras are ranked by whether the point lies inside their horizontal field of view, then
by distance; a camera whose view points away is used only when no camera faces the point.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from ingest.config import GeoPose
from ingest.geo import GeoPoint


def bearing_deg(origin: GeoPoint, target: GeoPoint) -> float:
    """Initial compass bearing from origin to target, 0–360 (both taken in WGS-84)."""
    a, b = origin.wgs84(), target.wgs84()
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lon - a.lon)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0


def in_view(pose: GeoPose, point: GeoPoint) -> bool:
    if pose.fov_deg >= 360 or pose.position.distance_m(point) < 1.0:
        return True
    off = abs((bearing_deg(pose.position, point) - pose.bearing_deg + 180.0) % 360.0 - 180.0)
    return off <= pose.fov_deg / 2


def cameras_seeing(poses: Iterable[tuple[str, GeoPose]], point: GeoPoint, *, limit: int = 3,
                   max_distance_m: float = 200.0) -> list[str]:
    """Ids of the cameras best placed to show ``point``: facing it first, nearest first, within range."""
    ranked = []
    for camera_id, pose in poses:
        distance = pose.position.distance_m(point)
        if distance <= max_distance_m:
            ranked.append((not in_view(pose, point), distance, camera_id))
    return [camera_id for _, _, camera_id in sorted(ranked)[:limit]]
