"""收: a call to the hotline (12345, or one handed over from 110/119/120) or a visit to the front desk.

The dispatcher types what the caller says: a callback number and name (kept for 回访, masked for other
roles), the line it came in on, and an address that is geocoded against the district's registry when no
point is picked. The dispatcher chooses category and urgency; a choice that differs from the suggestion
is learnt (``Suggester.correct``).
"""
from __future__ import annotations

from collections.abc import Iterable

from alerts.channels.filing import FiledReport, ReportFiling
from alerts.channels.masking import normalize_phone
from alerts.channels.screening import ReportError
from alerts.channels.values import Photo, ReportInput, Staff

HOTLINE_LINES = ("110", "119", "120", "12345", "front_desk", "other")


class HotlineChannel:
    def __init__(self, filing: ReportFiling):
        self.filing = filing

    def file(self, inp: ReportInput, photos: Iterable[Photo] = (), *, staff: Staff | None) -> FiledReport:
        """``staff`` a dispatcher/operator; address geocoded or lon/lat; category/urgency suggested when left out."""
        text = self.filing.screen_text(inp.text)
        phone = None
        if inp.phone:
            try:
                phone = normalize_phone(inp.phone)
            except ValueError as exc:
                raise ReportError(f"回访电话：{exc}", field="phone") from None
        if inp.line and inp.line not in HOTLINE_LINES:
            raise ReportError(f"来电线路只能是 {', '.join(HOTLINE_LINES)}", field="line")
        if staff is None:
            raise ReportError("需要工作人员登录", status=401)
        return self.filing.file("hotline", text, inp, photos, phone=phone, staff=staff, allow_geocode=True,
                                learn_choice=True)
