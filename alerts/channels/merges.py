"""Reports and the cases they belong to across merges: the camera ↔ report join, and following a merge.

Intake merges camera anomalies only per camera+zone+kind (a camera ticket's point is the camera, not
the scene), so a report and a camera ticket about the same spot are joined here (``join_across``): the
newer ticket into the older, so the case number people were already given survives. After any merge
or unmerge, the reports follow their ticket (``retarget`` / ``restore``), so a resident always sees the
case that is being worked.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.channels.models import Report
from alerts.core import Core
from alerts.lifecycle import OPEN, TransitionError
from alerts.models import Ticket
from ingest.geo import GeoPoint

log = logging.getLogger("alerts.channels")

CAMERA_JOIN_RADIUS_M = 150.0   # a camera sees a scene up to about this far from where it hangs
MERGE_CHAIN_LIMIT = 10         # how many merged_into hops ``current_ticket`` follows


def current_ticket(s: Session, ticket_id: int | None) -> Ticket | None:
    """The ticket a report's case lives in now: ``ticket_id`` itself or the one it was merged into."""
    t = s.get(Ticket, ticket_id) if ticket_id else None
    for _ in range(MERGE_CHAIN_LIMIT):
        if t is None or t.merged_into is None:
            return t
        t = s.get(Ticket, t.merged_into)
    return t


class ReportMerges:
    """Joins report and camera tickets about one place and time; keeps reports on their surviving ticket."""

    def __init__(self, core: Core, camera_join_radius_m: float = CAMERA_JOIN_RADIUS_M):
        self.store, self.intake, self.cases = core.parts.store, core.intake, core.cases
        self.camera_join_radius_m = camera_join_radius_m

    def join_across(self, ticket_id: int) -> dict[str, Any] | None:
        """Merge a new report ticket with an open camera ticket about the same place and time (or vice versa).

        Returns the surviving ticket's summary (``CaseService.merge``) when a merge happened.
        """
        with self.store.read() as s:
            t = s.get(Ticket, ticket_id)
            if t is None or t.status not in OPEN or t.source_kind not in ("report", "camera"):
                return None
            other_kind = "camera" if t.source_kind == "report" else "report"
            cat = self.intake.policy.category(t.category)
            if cat.merge_window_s <= 0:
                return None
            since = t.first_seen_at - timedelta(seconds=cat.merge_window_s)
            radius = max(cat.merge_radius_m, self.camera_join_radius_m)
            dlat = radius / 111_320.0
            here = GeoPoint(lon=t.lon, lat=t.lat)
            q = (select(Ticket).where(Ticket.id != t.id, Ticket.status.in_(OPEN), Ticket.category == t.category,
                                      Ticket.source_kind == other_kind, Ticket.last_seen_at >= since,
                                      Ticket.lat.between(t.lat - dlat, t.lat + dlat))
                 .order_by(Ticket.id).limit(50))
            best = None
            for c in s.scalars(q):
                d = here.distance_m(GeoPoint(lon=c.lon, lat=c.lat))
                if d <= radius and (best is None or d < best[0]):
                    best = (d, c.id)
            if best is None:
                return None
            older, newer = sorted((best[1], t.id))
        try:
            merged = self.cases.merge(newer, older, "system", "同一地点同一时段的视频告警与群众反映，自动合并", role="system")
        except (TransitionError, ValueError) as exc:
            log.info("cross-channel join of %s skipped: %s", ticket_id, exc)
            return None
        self.retarget(newer, older)
        return merged

    def retarget(self, src: int, dst: int) -> int:
        """Reports that followed ticket ``src`` now follow ``dst`` (after a merge); returns how many."""
        return self._follow(Report.ticket_id == src, dst)

    def restore(self, src: int) -> int:
        """After an unmerge: reports first filed into ``src`` follow it again."""
        return self._follow(Report.original_ticket_id == src, src)

    def _follow(self, which: Any, ticket_id: int) -> int:
        with self.store.write() as s:
            rows = s.scalars(select(Report).where(which)).all()
            number = s.scalar(select(Ticket.number).where(Ticket.id == ticket_id))
            for r in rows:
                r.ticket_id, r.case_number = ticket_id, number
            return len(rows)
