"""The one path every channel's report takes into the case intake: screen, locate, classify, keep, file, join.

A report is screened (text, flood limit, location inside the district, photos), classified (suggestion
+ confidence; a dispatcher's or worker's choice wins), kept in ``channel_reports`` *before* filing (so
nothing valid is lost even if filing fails), and filed through ``alerts.intake.Intake.file`` as an
``Anomaly(source="report")`` — the same routing, numbering and merging as a camera or an alarm. A new
report ticket is then joined with an open camera ticket about the same spot (``ReportMerges``). The
reporter's phone and name stay in this package's table; the ticket carries only the masked text.
What differs per channel (who may file, which phone, geocoding, self-signing) is in ``resident``,
``patrol`` and ``hotline``; they call ``ReportFiling.file``.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from alerts.channels.categories import HANDOVER_LABELS, URGENCIES, URGENCY_LABELS
from alerts.channels.classifier import Suggestion
from alerts.channels.config import ChannelsConfig
from alerts.channels.masking import mask_phone, mask_text
from alerts.channels.merges import ReportMerges
from alerts.channels.models import Report
from alerts.channels.photos import PhotoError, clean_photo, save_photo
from alerts.channels.places import Gazetteer
from alerts.channels.screening import FloodGuard, ReportError, clean_text
from alerts.channels.suggestions import Suggester
from alerts.channels.values import CHANNEL_KINDS, CHANNEL_LABELS, Location, Photo, ReportInput, Staff
from alerts.core import Core
from alerts.lifecycle import STATUS_LABELS
from alerts.models import Ticket
from ingest.anomaly import Anomaly
from ingest.geo import GeoPoint
from ingest.blobs import BlobStore

log = logging.getLogger("alerts.channels")

# After filing, a channel may act on a fresh case of its own (a patrol worker signs for it): given the
# ticket id, it returns the ticket's new status, or None when it did nothing.
AfterFiling = Callable[[int], "str | None"]


@dataclass(frozen=True)
class FiledReport:
    """The case a report landed in, as the form shows it."""

    report_id: int
    case_number: str
    ticket_id: int
    status: str
    status_label: str
    grid_code: str
    grid_name: str
    unit_code: str
    merged: bool
    category: str
    category_name: str
    urgency: str
    urgency_label: str
    handover: str | None
    handover_label: str | None
    suggestion: Suggestion
    location: Location
    address: str | None
    photos: int


@dataclass(frozen=True)
class Located:
    point: GeoPoint   # WGS-84
    address: str | None
    crs_in: str       # what the form sent


class ReportFiling:
    """Screening, keeping and filing of reports; thread-safe (each call opens its own session)."""

    def __init__(self, core: Core, cfg: ChannelsConfig, suggester: Suggester, gazetteer: Gazetteer,
                 merges: ReportMerges, evidence_dir: "BlobStore | Path"):
        self.store, self.grids, self.intake = core.parts.store, core.parts.grids, core.intake
        self.catalog, self.clock, self.cfg = core.catalog, core.clock, cfg
        self.suggester, self.gazetteer, self.merges = suggester, gazetteer, merges
        self.evidence_dir = evidence_dir  # a BlobStore (ingest.blobs) or a folder
        self.flood = FloodGuard(core.parts.redis, core.parts.keys.prefix, cfg.reports_per_phone_per_hour,
                                cfg.reports_per_phone_per_day)

    # -- screening -------------------------------------------------------------------------------
    def screen_text(self, text: str) -> str:
        return clean_text(text, min_chars=self.cfg.min_text_chars, max_chars=self.cfg.max_text_chars)

    def check_category(self, code: str) -> None:
        if self.catalog.get(code) is None:
            raise ReportError(f"未知的事件类别 {code}", field="category")

    def locate(self, inp: ReportInput, allow_geocode: bool) -> Located:
        """The report's point from lon/lat (any supported CRS) or, where allowed, its address; inside the district."""
        address = (inp.address or "").strip()[:300] or None
        if inp.lon is not None and inp.lat is not None:
            crs = (inp.crs or "WGS84").upper().replace("-", "")
            if crs not in ("WGS84", "GCJ02", "BD09"):
                raise ReportError("坐标系只支持 WGS84、GCJ02、BD09", field="crs")
            try:
                point = GeoPoint(lon=float(inp.lon), lat=float(inp.lat), crs=crs).wgs84()
            except (ValueError, TypeError):
                raise ReportError("位置坐标无效", field="location") from None
            crs_in = crs
        elif allow_geocode and address:
            match = self.gazetteer.geocode(address)
            if match is None:
                raise ReportError("地址未能匹配到辖区地址库，请在地图上点选位置", field="address")
            point, crs_in = match.place.point, "WGS84"
        else:
            raise ReportError("请在地图上选择位置或允许获取当前位置" if not allow_geocode else "请填写地址或在地图上点选位置",
                              field="location")
        if self.grids.route(point) is None:
            raise ReportError(f"所选位置不在本辖区{('（' + self.gazetteer.district + '）') if self.gazetteer.district else ''}内，"
                              "请重新选择；辖区外的问题请拨打12345", field="location")
        return Located(point, address, crs_in)

    def clean_photos(self, photos: Iterable[Photo]) -> list[bytes]:
        """Each photo decoded, limited and re-encoded as JPEG (EXIF stripped); a ReportError naming the bad one."""
        photos = list(photos)
        if len(photos) > self.cfg.max_photos:
            raise ReportError(f"最多上传{self.cfg.max_photos}张照片", field="photos")
        out = []
        for i, p in enumerate(photos, 1):
            try:
                jpeg, _, _ = clean_photo(p.data, f"第{i}张照片（{p.name[:40]}）", max_bytes=self.cfg.photo_max_bytes,
                                         max_pixels=self.cfg.photo_max_pixels, max_side=self.cfg.photo_max_side)
            except PhotoError as exc:
                raise ReportError(str(exc), field="photos", status=413 if "过大" in str(exc) else 422) from None
            out.append(jpeg)
        return out

    # -- filing ----------------------------------------------------------------------------------
    def file(self, channel: str, text: str, inp: ReportInput, photos: Iterable[Photo], *, phone: str | None,
             staff: Staff | None, allow_geocode: bool = False, learn_choice: bool = False,
             after: AfterFiling | None = None) -> FiledReport:
        """File one screened report (``text`` already through ``screen_text``); raises ReportError (4xx/503).

        ``learn_choice``: the filer's category, when given and different, is stored as a correction.
        ``after``: called with the ticket id when the report opened a case of its own (not merged or joined).
        """
        now = self.clock()
        where = self.locate(inp, allow_geocode)
        cleaned = self.clean_photos(photos)
        suggestion = self.suggester.classify(text)
        category = inp.category or suggestion.category
        self.check_category(category)
        urgency = inp.urgency or suggestion.urgency
        if urgency not in URGENCIES:
            raise ReportError(f"紧急程度只能是 {', '.join(URGENCIES)}", field="urgency")
        if phone:
            self.flood.check(phone)   # last check: a refusal above does not use up the quota
        evidence = [save_photo(self.evidence_dir, jpeg, channel) for jpeg in cleaned]
        handover = self.catalog.handover(category)
        anomaly_id = uuid.uuid4().hex
        line = inp.line if channel == "hotline" else None
        with self.store.write() as s:
            report = Report(channel=channel, line=line, anomaly_id=anomaly_id, phone=phone,
                            name=(inp.name or "").strip()[:100] or None, wechat_openid=(inp.wechat_openid or None),
                            staff=staff.username if staff else None, text=text, address=where.address,
                            lon=where.point.lon, lat=where.point.lat, crs_in=where.crs_in, category=category,
                            urgency=urgency, suggested_category=suggestion.category,
                            suggested_urgency=suggestion.urgency, confidence=suggestion.confidence, handover=handover,
                            photos=[e.model_dump() for e in evidence], created_at=now)
            s.add(report)
            s.flush()
            report_id = report.id
        if staff is not None and inp.category and learn_choice:
            self.suggester.correct(text, (suggestion.category, suggestion.urgency), category, urgency, staff.username,
                                   report_id)
        cat_name = self.catalog.name(category)
        anomaly = Anomaly(
            id=anomaly_id, kind=CHANNEL_KINDS[channel], source="report", source_id=f"{channel}-{report_id}",
            location=where.point, occurred_at=now, observed_at=now.timestamp(),
            score=(URGENCIES.index(urgency) + 1) / len(URGENCIES), category=category,
            title=f"【{URGENCY_LABELS[urgency]}】{cat_name}：{mask_text(text)[:60]}", evidence=evidence,
            details={"description": mask_text(text), "address": where.address, "channel": channel,
                     "channel_label": CHANNEL_LABELS[channel], "line": line, "urgency": urgency, "handover": handover,
                     "report_id": report_id, "reporter": mask_phone(phone) if phone else (staff.username if staff else None),
                     "suggestion": {"category": suggestion.category, "confidence": suggestion.confidence,
                                    "urgency": suggestion.urgency}})
        try:
            ref = self.intake.file(anomaly)
        except Exception as exc:
            log.exception("report %s could not be filed; kept for retry", report_id)
            with self.store.write() as s:
                s.get(Report, report_id).error = f"{type(exc).__name__}: {str(exc)[:500]}"
            raise ReportError("系统繁忙，您的反映已保存，稍后将自动受理", status=503) from None
        ticket_id, number = ref.ticket_id, ref.number
        with self.store.write() as s:
            # Recorded before any join, so the merge event finds the report on the ticket it names.
            r = s.get(Report, report_id)
            r.ticket_id, r.original_ticket_id, r.case_number = ticket_id, ref.ticket_id, number
            r.grid_code = s.scalar(select(Ticket.grid_code).where(Ticket.id == ticket_id))
        joined = self.merges.join_across(ticket_id) if ref.created and ticket_id is not None else None
        if joined:
            ticket_id, number = joined["id"], joined["number"]
        with self.store.read() as s:
            t = s.get(Ticket, ticket_id)
            status, grid_code, unit_code = t.status, t.grid_code, t.unit_code
        if after is not None and ref.created and not joined:
            status = after(ticket_id) or status
        grid = self.grids.get(grid_code)
        merged = bool(ref.merged or joined)
        log.info("%s report %s filed as %s (%s) in %s", channel, report_id, number, "merged" if merged else "new",
                 grid_code)
        return FiledReport(report_id=report_id, case_number=number, ticket_id=ticket_id, status=status,
                           status_label=STATUS_LABELS.get(status, status), grid_code=grid_code,
                           grid_name=grid.name if grid else grid_code, unit_code=unit_code, merged=merged,
                           category=category, category_name=cat_name, urgency=urgency,
                           urgency_label=URGENCY_LABELS[urgency], handover=handover,
                           handover_label=HANDOVER_LABELS.get(handover or ""), suggestion=suggestion,
                           location=Location(where.point.lon, where.point.lat), address=where.address,
                           photos=len(evidence))
