"""Reports as staff see them (lists and one report, masked per role) and a dispatcher's correction of one.

Residents' phone numbers and names are shown in full only to the roles that call people back
(``UNMASKED_ROLES``); a worker sees the reports of the grids they may see (``Staff.scope``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from alerts.channels.masking import UNMASKED_ROLES, mask_name, mask_phone, mask_text
from alerts.channels.models import Report
from alerts.channels.screening import ReportError
from alerts.channels.suggestions import Suggester
from alerts.channels.values import Location, Staff
from alerts.core import Core


@dataclass(frozen=True)
class StaffReport:
    id: int
    channel: str
    line: str | None
    case_number: str | None
    ticket_id: int | None
    phone: str | None
    name: str | None
    staff: str | None
    text: str
    address: str | None
    location: Location
    crs_in: str
    category: str
    category_name: str
    urgency: str
    suggested_category: str | None
    suggested_urgency: str | None
    confidence: float | None
    handover: str | None
    photos: list[dict[str, Any]]
    grid_code: str | None
    created_at: datetime
    error: str | None


@dataclass(frozen=True)
class ReportPage:
    total: int
    offset: int
    limit: int
    items: list[StaffReport]


@dataclass(frozen=True)
class Recategorized:
    report_id: int
    category: str
    urgency: str
    correction_stored: bool


class StaffReports:
    def __init__(self, core: Core, suggester: Suggester, check_category: Callable[[str], None]):
        self.store, self.catalog, self.suggester = core.parts.store, core.catalog, suggester
        self.check_category = check_category

    def view(self, r: Report, role: str) -> StaffReport:
        """A report as a staff member sees it: phone and name masked unless the role calls people back."""
        full = role in UNMASKED_ROLES
        return StaffReport(
            id=r.id, channel=r.channel, line=r.line, case_number=r.case_number, ticket_id=r.ticket_id,
            phone=(r.phone if full else mask_phone(r.phone)) if r.phone else None,
            name=(r.name if full else mask_name(r.name)) if r.name else None,
            staff=r.staff, text=r.text if full else mask_text(r.text), address=r.address,
            location=Location(r.lon, r.lat), crs_in=r.crs_in, category=r.category,
            category_name=self.catalog.name(r.category), urgency=r.urgency, suggested_category=r.suggested_category,
            suggested_urgency=r.suggested_urgency, confidence=r.confidence, handover=r.handover, photos=r.photos,
            grid_code=r.grid_code, created_at=r.created_at, error=r.error)

    def list(self, staff: Staff, *, channel: str | None = None, ticket_id: int | None = None, offset: int = 0,
             limit: int = 50) -> ReportPage:
        q = select(Report)
        if staff.scope is not None:
            q = q.where(Report.grid_code.in_(list(staff.scope)) if staff.scope else Report.id < 0)
        if channel:
            q = q.where(Report.channel == channel)
        if ticket_id is not None:
            q = q.where(or_(Report.ticket_id == ticket_id, Report.original_ticket_id == ticket_id))
        limit = max(1, min(limit, 200))
        with self.store.read() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(q.order_by(Report.id.desc()).offset(max(0, offset)).limit(limit)).all()
            return ReportPage(total, offset, limit, [self.view(r, staff.role) for r in rows])

    def get(self, report_id: int, staff: Staff) -> StaffReport:
        with self.store.read() as s:
            return self.view(self._seen(s.get(Report, report_id), staff), staff.role)

    def recategorize(self, report_id: int, category: str, urgency: str | None, staff: Staff) -> Recategorized:
        """A dispatcher corrects the category/urgency of a filed report (feeds the classifier; the case keeps its number)."""
        self.check_category(category)
        with self.store.write() as s:
            r = self._seen(s.get(Report, report_id), staff)
            urgency = urgency or r.urgency
            text, suggested = r.text, (r.suggested_category, r.suggested_urgency)
            r.category, r.urgency = category, urgency
        stored = self.suggester.correct(text, suggested, category, urgency, staff.username, report_id)
        return Recategorized(report_id, category, urgency, stored)

    @staticmethod
    def _seen(r: Report | None, staff: Staff) -> Report:
        """``r`` when it exists and lies in the staff member's grids; else 404 / 403."""
        if r is None:
            raise ReportError("没有这条反映", status=404)
        if staff.scope is not None and (r.grid_code is None or r.grid_code not in staff.scope):
            raise ReportError("forbidden", status=403)
        return r
