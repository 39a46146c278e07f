"""报: a resident's own reports — filed after an SMS-code login, followed, supplemented and rated.

The resident is known by the phone number they logged in with; they see their reports (and hotline calls
made from the same number) with the state of the case each landed in, a public timeline (what was done,
with notes only where they speak to the resident), and rate the case once it is closed.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.channels.categories import Catalog
from alerts.channels.filing import FiledReport, ReportFiling
from alerts.channels.masking import mask_phone, mask_text, normalize_phone
from alerts.channels.merges import current_ticket
from alerts.channels.models import Report, Survey
from alerts.channels.photos import save_photo
from alerts.channels.screening import ReportError, clean_text
from alerts.channels.surveys import SurveyAnswer, Surveys
from alerts.channels.values import CHANNEL_LABELS, Location, Photo, ReportInput
from alerts.core import Core
from alerts.lifecycle import OPEN, STATUS_LABELS
from alerts.models import HistoryEntry
from ingest.blobs import BlobStore

# What a resident sees of the history: the action, and the note only where it speaks to them.
PUBLIC_ACTIONS = {"create": "已受理", "register": "已立案", "dispatch": "已派遣", "sign": "已签收", "start": "处置中",
                  "feedback": "已处置反馈", "verify": "已核查", "close": "已办结", "auto_close": "已办结", "rate": "已评价",
                  "rework": "返工处理", "merge": "已合并", "merge_in": "有新的相同反映并入", "void": "已作结",
                  "false_alarm": "经核实不予立案", "comment": "补充信息", "escalate": "已提级督办", "supervise": "督办中"}
PUBLIC_NOTES = {"feedback", "close", "void", "false_alarm", "comment"}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    action: str
    label: str
    note: str


@dataclass(frozen=True)
class ResidentReport:
    """One of the resident's reports with the state of its case (a list row)."""

    report_id: int
    channel: str
    channel_label: str
    case_number: str | None
    status: str
    status_label: str
    category: str
    category_name: str
    urgency: str
    text: str
    address: str | None
    location: Location
    grid_name: str | None
    created_at: datetime
    closed_at: datetime | None
    can_rate: bool
    rating: int | None
    photos: int


@dataclass(frozen=True)
class ResidentReportDetail(ResidentReport):
    """One report with the public timeline of its case (once the case exists)."""

    timeline: list[TimelineEntry]


class ResidentChannel:
    def __init__(self, core: Core, filing: ReportFiling, surveys: Surveys, evidence_dir: "BlobStore | Path", *, max_text_chars: int):
        self.store, self.grids, self.cases = core.parts.store, core.parts.grids, core.cases
        self.catalog: Catalog = core.catalog
        self.filing, self.surveys, self.evidence_dir = filing, surveys, evidence_dir
        self.max_text_chars, self.clock = max_text_chars, core.clock

    def file(self, inp: ReportInput, photos: Iterable[Photo] = (), *, resident_phone: str | None) -> FiledReport:
        """``resident_phone`` from the login; location by lon/lat; category optional (suggested)."""
        text = self.filing.screen_text(inp.text)
        if not resident_phone:
            raise ReportError("请先登录", status=401)
        return self.filing.file("resident", text, inp, photos, phone=normalize_phone(resident_phone), staff=None)

    def mine(self, phone: str, limit: int = 50) -> list[ResidentReport]:
        """A resident's reports (resident channel and hotline calls from the same number), newest first."""
        phone = normalize_phone(phone)
        with self.store.read() as s:
            rows = s.scalars(select(Report).where(Report.phone == phone).order_by(Report.id.desc()).limit(limit)).all()
            return [self._view(s, r, detail=False) for r in rows]

    def one(self, phone: str, report_id: int) -> ResidentReport:
        with self.store.read() as s:
            return self._view(s, self._own(s, phone, report_id), detail=True)

    def _own(self, s: Session, phone: str, report_id: int) -> Report:
        """The resident's report ``report_id``; 404 for a report of another number, as for none at all."""
        r = s.get(Report, report_id)
        if r is None or r.phone != normalize_phone(phone):
            raise ReportError("没有这条反映", status=404)
        return r

    def _view(self, s: Session, r: Report, detail: bool) -> ResidentReport:
        t = current_ticket(s, r.ticket_id)
        grid = self.grids.get(t.grid_code) if t else None
        survey = s.scalar(select(Survey).where(Survey.report_id == r.id))
        row = dict(
            report_id=r.id, channel=r.channel, channel_label=CHANNEL_LABELS.get(r.channel, r.channel),
            case_number=t.number if t else r.case_number, status=t.status if t else "pending",
            status_label=STATUS_LABELS.get(t.status, t.status) if t else "待受理", category=r.category,
            category_name=self.catalog.name(r.category), urgency=r.urgency, text=r.text, address=r.address,
            location=Location(r.lon, r.lat), grid_name=grid.name if grid else None, created_at=r.created_at,
            closed_at=t.closed_at if t and t.closed_at else None,
            can_rate=bool(t and t.status in ("closed", "rated") and (survey is None or survey.answered_at is None)),
            rating=survey.score if survey and survey.answered_at else None, photos=len(r.photos or []))
        if not detail or t is None:
            return ResidentReport(**row)
        hist = s.scalars(select(HistoryEntry).where(HistoryEntry.ticket_id == t.id).order_by(HistoryEntry.id)).all()
        timeline = [TimelineEntry(h.at, h.action, PUBLIC_ACTIONS[h.action],
                                  mask_text(h.note) if h.action in PUBLIC_NOTES else "")
                    for h in hist if h.action in PUBLIC_ACTIONS]
        return ResidentReportDetail(**row, timeline=timeline)

    def add_info(self, phone: str, report_id: int, text: str, photos: Iterable[Photo] = ()) -> ResidentReport:
        """The resident adds text and photos to their open case (a ``comment`` on the ticket with the photos)."""
        phone = normalize_phone(phone)
        text = clean_text(text, min_chars=2, max_chars=self.max_text_chars)
        cleaned = self.filing.clean_photos(photos)
        with self.store.read() as s:
            t = current_ticket(s, self._own(s, phone, report_id).ticket_id)
            if t is None:
                raise ReportError("案件尚未受理，请稍后再试", status=409)
            if t.status not in OPEN:
                raise ReportError("案件已办结，不能再补充；如有新问题请重新上报", status=409)
            ticket_id = t.id
        evidence = [save_photo(self.evidence_dir, j, "resident").model_dump() for j in cleaned]
        self.cases.transition(ticket_id, "comment", f"居民{mask_phone(phone)}", mask_text(text), attachments=evidence,
                              role="resident")
        with self.store.write() as s:
            r = s.get(Report, report_id)
            r.photos = [*(r.photos or []), *evidence]
        return self.one(phone, report_id)

    def rate(self, phone: str, report_id: int, score: int, comment: str = "", resolved: bool | None = None) -> SurveyAnswer:
        """The logged-in resident rates their closed case (same as answering the 回访 survey)."""
        with self.store.write() as s:
            r = self._own(s, phone, report_id)
            t = current_ticket(s, r.ticket_id)
            if t is None or t.status not in ("closed", "rated"):
                raise ReportError("案件办结后才能评价", status=409)
            token = self.surveys.open(s, r, t, self.clock()).token
        return self.surveys.answer(token, score, comment, resolved)
