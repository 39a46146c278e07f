"""Small builders shared by the case-system tests."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.anomaly import Anomaly
from tests.support import wait_for
from ingest.geo import GeoPoint

PLAZA = (120.105, 30.276)          # 清河北社区第1网格 330199001001001
CROSSING = (120.135, 30.253)       # 明月南社区第4网格 330199002002004
MARGIN = (120.098, 30.270)         # district margin, in no street: district fallback desk


def anomaly(kind: str = "crowd", source: str = "camera", source_id: str = "cam-plaza", zone: str | None = "plaza",
            at: tuple[float, float] = PLAZA, occurred_at: datetime | None = None, crs: str = "WGS84", **kw: Any) -> Anomaly:
    extra: dict[str, Any] = {}
    if occurred_at is not None:
        extra["occurred_at"] = occurred_at
        extra["observed_at"] = occurred_at.timestamp()
    return Anomaly(kind=kind, source=source, source_id=source_id, zone=zone,
                   location=GeoPoint(lon=at[0], lat=at[1], crs=crs), **extra, **kw)


def poll(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Wait for ``predicate()`` to be truthy (returning it) or fail after ``timeout`` seconds."""
    return wait_for(predicate, timeout, interval)
