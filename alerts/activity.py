"""Recording anomalies of the ``activity`` review tier: a row per anomaly, no ticket, no duty entry, no event.

Why: motion alone (and any rule a deployment marks ``tier: activity``) is worth keeping on the camera's
timeline with its evidence, but not worth a person's attention; filing it as tickets flooded the wall.
Intake calls ``record`` inside its batch transaction, so an activity row is as durable as a ticket and
the stream entry is acknowledged only after it is committed. Nothing is published: the live feed and the
notifier only ever see tickets.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.events import Effects
from alerts.filing import RoutingError, aware, route_point
from alerts.grids import GridIndex
from alerts.models import Activity
from alerts.views import TicketRef
from ingest.anomaly import Anomaly


def record(s: Session, a: Anomaly, grids: GridIndex, category: str | None, now: datetime,
           stats: dict[str, int]) -> tuple[TicketRef, Effects]:
    """Add ``a`` as an activity row (once per anomaly id); returns the empty ticket reference intake answers."""
    with s.no_autoflush:  # the batch flushes its staged tickets once, later
        known = s.scalar(select(Activity.id).where(Activity.anomaly_id == a.id))
    if known is not None:
        stats["duplicate"] = stats.get("duplicate", 0) + 1
        return TicketRef(None, None, duplicate=True), Effects()
    point = a.location.wgs84()
    try:
        grid_code: str | None = route_point(grids, point)[0].code
    except RoutingError:
        grid_code = None
    occurred = aware(a.occurred_at)
    s.add(Activity(anomaly_id=a.id, source_kind=a.source, source_id=a.source_id, zone=a.zone, kind=a.kind,
                   category=category, grid_code=grid_code, lon=point.lon, lat=point.lat, score=a.score, title=a.title,
                   evidence=[e.model_dump() for e in a.evidence], details=a.details, occurred_at=occurred,
                   received_at=now))
    stats["activity"] = stats.get("activity", 0) + 1
    return TicketRef(None, None), Effects()
