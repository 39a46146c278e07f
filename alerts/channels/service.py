"""Reports from people into the one case intake: resident (报), patrol (采) and hotline / front desk (收).

A report is screened (text, flood limit, location inside the district, photos), classified (suggestion
+ confidence; a dispatcher's or worker's choice wins and, when it differs, is stored as a correction),
kept in ``channel_reports`` (so nothing valid is lost even if filing fails), and filed through
``alerts.intake.Intake.file`` as an ``Anomaly(source="report")`` — the same routing, numbering and
merging as a camera or an alarm. Intake merges reports with reports, alarms and sensors by place and
time; a report and a camera anomaly about the same spot are joined here (``join_across``), because a
camera ticket's point is the camera, not the scene. The reporter's phone and name stay in this
package's table; the ticket carries only the masked text.
"""
from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import redis
from sqlalchemy import func, or_, select

from alerts.channels.categories import HANDOVER_LABELS, URGENCIES, URGENCY_LABELS, Catalog
from alerts.channels.classifier import Example, ReportClassifier, Suggestion
from alerts.channels.config import ChannelsConfig
from alerts.channels.masking import mask_name, mask_phone, mask_text, normalize_phone, UNMASKED_ROLES
from alerts.channels.models import Correction, Report, Survey
from alerts.channels.photos import PhotoError, clean_photo, save_photo
from alerts.channels.places import Gazetteer
from alerts.channels.screening import FloodGuard, ReportError, clean_text
from alerts.config import AlertsConfig
from alerts.grids import GridIndex
from alerts.intake import Intake
from alerts.lifecycle import OPEN, STATUS_LABELS, TransitionError
from alerts.models import HistoryEntry, Ticket
from alerts.service import CaseService
from alerts.store import Store
from alerts.streams import StreamKeys
from detectors.anomaly import Anomaly
from ingest.geo import GeoPoint

log = logging.getLogger("alerts.channels")

CHANNEL_KINDS = {"resident": "resident_report", "patrol": "patrol_report", "hotline": "hotline"}
CHANNEL_LABELS = {"resident": "居民上报", "patrol": "网格员巡查", "hotline": "热线/窗口"}
HOTLINE_LINES = ("110", "119", "120", "12345", "front_desk", "other")
# What a resident sees of the history: the action, and the note only where it speaks to them.
PUBLIC_ACTIONS = {"create": "已受理", "register": "已立案", "dispatch": "已派遣", "sign": "已签收", "start": "处置中",
                  "feedback": "已处置反馈", "verify": "已核查", "close": "已办结", "auto_close": "已办结", "rate": "已评价",
                  "rework": "返工处理", "merge": "已合并", "merge_in": "有新的相同反映并入", "void": "已作结",
                  "false_alarm": "经核实不予立案", "comment": "补充信息", "escalate": "已提级督办", "supervise": "督办中"}
PUBLIC_NOTES = {"feedback", "close", "void", "false_alarm", "comment"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class ReportInput:
    """What a form sends; which fields are required depends on the channel (see ``submit``)."""

    text: str
    lon: float | None = None
    lat: float | None = None
    crs: str = "WGS84"
    address: str | None = None
    category: str | None = None
    urgency: str | None = None
    phone: str | None = None
    name: str | None = None
    line: str | None = None
    wechat_openid: str | None = None


@dataclass(frozen=True)
class Staff:
    """The worker or dispatcher filing a report (from the gateway's principal)."""

    username: str
    role: str
    grids: tuple[str, ...] = ()
    scope: frozenset[str] | None = None   # every grid code they may see; None = all


@dataclass
class Photo:
    name: str
    data: bytes


class ChannelService:
    """Filing, following, supplementing and rating reports; thread-safe (each call opens its own session)."""

    def __init__(self, *, store: Store, grids: GridIndex, alerts_cfg: AlertsConfig, redis_client: redis.Redis,
                 keys: StreamKeys, intake: Intake, cases: CaseService, catalog: Catalog, classifier: ReportClassifier,
                 cfg: ChannelsConfig, evidence_dir: Path, gazetteer: Gazetteer, seed: list[Example] | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.store, self.grids, self.alerts_cfg, self.redis, self.keys = store, grids, alerts_cfg, redis_client, keys
        self.intake, self.cases, self.catalog, self.classifier, self.cfg = intake, cases, catalog, classifier, cfg
        self.evidence_dir, self.gazetteer, self.clock = evidence_dir, gazetteer, clock  # a BlobStore or a folder
        self.seed = list(seed or [])
        self.flood = FloodGuard(redis_client, keys.prefix, cfg.reports_per_phone_per_hour, cfg.reports_per_phone_per_day)
        self._corrections_trained = self._count_corrections()
        self.camera_join_radius_m = 150.0

    # -- classification ------------------------------------------------------------------------
    def classify(self, text: str) -> Suggestion:
        """Suggest category + urgency (retraining first if dispatchers corrected something since the last fit)."""
        self.maybe_retrain()
        return self.classifier.suggest(text)

    def _count_corrections(self) -> int:
        with self.store.read() as s:
            return int(s.scalar(select(func.count()).select_from(Correction)) or 0)

    def maybe_retrain(self, force: bool = False) -> bool:
        n = self._count_corrections()
        if not force and n - self._corrections_trained < self.cfg.retrain_every:
            return False
        self.retrain()
        self._corrections_trained = n
        return True

    def retrain(self) -> int:
        """Fit the classifier on the seed plus every stored correction (latest per text wins); returns examples used."""
        with self.store.read() as s:
            rows = s.scalars(select(Correction).order_by(Correction.id)).all()
        # One path for every correction (also what ``alerts.channels.evaluate`` replays for its learning curve).
        return self.classifier.learn(self.seed, [Example(r.text, r.category, r.urgency) for r in rows])

    def correct(self, text: str, suggestion: Suggestion | None, category: str, urgency: str, actor: str,
                report_id: int | None = None) -> bool:
        """Record a dispatcher's choice when it differs from the suggestion; returns whether one was stored."""
        if suggestion is not None and suggestion.category == category and suggestion.urgency == urgency:
            return False
        with self.store.write() as s:
            s.add(Correction(report_id=report_id, text=text, suggested_category=suggestion.category if suggestion else None,
                             category=category, suggested_urgency=suggestion.urgency if suggestion else None,
                             urgency=urgency, actor=actor, at=self.clock()))
        self.maybe_retrain()
        return True

    def recategorize(self, report_id: int, category: str, urgency: str | None, staff: Staff) -> dict[str, Any]:
        """A dispatcher corrects the category/urgency of a filed report (feeds the classifier; the case keeps its number)."""
        self._check_category(category)
        with self.store.write() as s:
            r = s.get(Report, report_id)
            if r is None:
                raise ReportError("没有这条反映", status=404)
            self._check_staff_sees(r, staff)
            urgency = urgency or r.urgency
            text, sugg = r.text, (r.suggested_category, r.suggested_urgency)
            r.category, r.urgency = category, urgency
        stored = False
        if (category, urgency) != sugg:
            with self.store.write() as s:
                s.add(Correction(report_id=report_id, text=text, suggested_category=sugg[0], category=category,
                                 suggested_urgency=sugg[1], urgency=urgency, actor=staff.username, at=self.clock()))
            stored = True
            self.maybe_retrain()
        return {"report_id": report_id, "category": category, "urgency": urgency, "correction_stored": stored}

    # -- filing ----------------------------------------------------------------------------------
    def _check_category(self, code: str) -> None:
        if self.catalog.get(code) is None:
            raise ReportError(f"未知的事件类别 {code}", field="category")

    def _locate(self, inp: ReportInput, allow_geocode: bool) -> tuple[GeoPoint, str | None, str]:
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
        return point, address, crs_in

    def _photos(self, photos: Iterable[Photo]) -> list[bytes]:
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

    def submit(self, channel: str, inp: ReportInput, photos: Iterable[Photo] = (), *, staff: Staff | None = None,
               resident_phone: str | None = None) -> dict[str, Any]:
        """File one report; returns the case it landed in. Raises ReportError (4xx) with a message for the form.

        resident: ``resident_phone`` (from the login), location by lon/lat; category optional (suggested).
        patrol: ``staff`` a grid worker/leader; location by lon/lat; category optional.
        hotline: ``staff`` a dispatcher/operator; caller phone (callback) and name; address geocoded or lon/lat;
        category and urgency chosen by the dispatcher (suggested when left out; an override is learnt).
        """
        if channel not in CHANNEL_KINDS:
            raise ReportError(f"unknown channel {channel!r}", status=400)
        now = self.clock()
        text = clean_text(inp.text, min_chars=self.cfg.min_text_chars, max_chars=self.cfg.max_text_chars)
        phone: str | None = None
        if channel == "resident":
            if not resident_phone:
                raise ReportError("请先登录", status=401)
            phone = normalize_phone(resident_phone)
        elif channel == "hotline":
            if inp.phone:
                try:
                    phone = normalize_phone(inp.phone)
                except ValueError as exc:
                    raise ReportError(f"回访电话：{exc}", field="phone") from None
            if inp.line and inp.line not in HOTLINE_LINES:
                raise ReportError(f"来电线路只能是 {', '.join(HOTLINE_LINES)}", field="line")
        if staff is None and channel != "resident":
            raise ReportError("需要工作人员登录", status=401)
        point, address, crs_in = self._locate(inp, allow_geocode=channel == "hotline")
        cleaned = self._photos(photos)
        suggestion = self.classify(text)
        category = inp.category or suggestion.category
        self._check_category(category)
        urgency = inp.urgency or suggestion.urgency
        if urgency not in URGENCIES:
            raise ReportError(f"紧急程度只能是 {', '.join(URGENCIES)}", field="urgency")
        if phone:
            self.flood.check(phone)   # last check: a refusal above does not use up the quota
        evidence = [save_photo(self.evidence_dir, jpeg, channel) for jpeg in cleaned]
        handover = self.catalog.handover(category)
        anomaly_id = uuid.uuid4().hex
        name = (inp.name or "").strip()[:100] or None
        with self.store.write() as s:
            report = Report(channel=channel, line=inp.line if channel == "hotline" else None, anomaly_id=anomaly_id,
                            phone=phone, name=name, wechat_openid=(inp.wechat_openid or None), staff=staff.username if staff else None,
                            text=text, address=address, lon=point.lon, lat=point.lat, crs_in=crs_in, category=category,
                            urgency=urgency, suggested_category=suggestion.category, suggested_urgency=suggestion.urgency,
                            confidence=suggestion.confidence, handover=handover, photos=[e.model_dump() for e in evidence],
                            created_at=now)
            s.add(report)
            s.flush()
            report_id = report.id
        if staff is not None and inp.category and channel == "hotline":
            self.correct(text, suggestion, category, urgency, staff.username, report_id)
        cat_name = self.catalog.name(category)
        source_id = f"{channel}-{report_id}"
        anomaly = Anomaly(
            id=anomaly_id, kind=CHANNEL_KINDS[channel], source="report", source_id=source_id, location=point,
            occurred_at=now, observed_at=now.timestamp(), score=(URGENCIES.index(urgency) + 1) / len(URGENCIES),
            category=category, title=f"【{URGENCY_LABELS[urgency]}】{cat_name}：{mask_text(text)[:60]}", evidence=evidence,
            details={"description": mask_text(text), "address": address, "channel": channel,
                     "channel_label": CHANNEL_LABELS[channel], "line": inp.line if channel == "hotline" else None,
                     "urgency": urgency, "handover": handover, "report_id": report_id, "reporter": mask_phone(phone) if phone else (staff.username if staff else None),
                     "suggestion": {"category": suggestion.category, "confidence": suggestion.confidence, "urgency": suggestion.urgency}})
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
        joined = None
        if ref.created and ticket_id is not None:
            joined = self.join_across(ticket_id)
            if joined:
                ticket_id, number = joined["id"], joined["number"]
        with self.store.read() as s:
            t = s.get(Ticket, ticket_id)
            status, grid_code, unit_code = t.status, t.grid_code, t.unit_code
        if channel == "patrol" and staff is not None and self.cfg.patrol_self_sign and ref.created and not joined:
            status = self._self_sign(ticket_id, staff) or status
        grid = self.grids.get(grid_code)
        log.info("%s report %s filed as %s (%s) in %s", channel, report_id, number,
                 "merged" if (ref.merged or joined) else "new", grid_code)
        return {"report_id": report_id, "case_number": number, "ticket_id": ticket_id, "status": status,
                "status_label": STATUS_LABELS.get(status, status), "grid_code": grid_code,
                "grid_name": grid.name if grid else grid_code, "unit_code": unit_code,
                "merged": bool(ref.merged or joined), "category": category, "category_name": cat_name,
                "urgency": urgency, "urgency_label": URGENCY_LABELS[urgency], "handover": handover,
                "handover_label": HANDOVER_LABELS.get(handover or ""), "suggestion": suggestion.to_dict(),
                "location": {"lon": point.lon, "lat": point.lat, "crs": "WGS84"}, "address": address,
                "photos": len(evidence)}

    def _self_sign(self, ticket_id: int, staff: Staff) -> str | None:
        """A worker's own find in a grid they hold: signed for by them at once (自行处置)."""
        try:
            t = self.cases.get_ticket(ticket_id)
            if t["status"] != "dispatched" or not any(t["unit_code"].startswith(g) for g in staff.grids):
                return None
            out = self.cases.transition(ticket_id, "sign", staff.username, "巡查发现，自行处置", role=staff.role)
            return out["status"]
        except (TransitionError, ValueError) as exc:
            log.info("patrol self-sign of ticket %s skipped: %s", ticket_id, exc)
            return None

    # -- joining with camera cases ---------------------------------------------------------------
    def join_across(self, ticket_id: int) -> dict[str, Any] | None:
        """Merge a new report ticket with an open camera ticket about the same place and time (or vice versa).

        The newer ticket goes into the older one, so the case number people were already given survives.
        Returns the surviving ticket's summary when a merge happened.
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
        with self.store.write() as s:
            rows = s.scalars(select(Report).where(Report.ticket_id == src)).all()
            number = s.scalar(select(Ticket.number).where(Ticket.id == dst))
            for r in rows:
                r.ticket_id, r.case_number = dst, number
            return len(rows)

    def restore(self, src: int) -> int:
        """After an unmerge: reports first filed into ``src`` follow it again."""
        with self.store.write() as s:
            rows = s.scalars(select(Report).where(Report.original_ticket_id == src)).all()
            number = s.scalar(select(Ticket.number).where(Ticket.id == src))
            for r in rows:
                r.ticket_id, r.case_number = src, number
            return len(rows)

    # -- residents following their cases ---------------------------------------------------------
    def _resolve(self, s: Any, ticket_id: int | None) -> Ticket | None:
        t = s.get(Ticket, ticket_id) if ticket_id else None
        for _ in range(10):
            if t is None or t.merged_into is None:
                return t
            t = s.get(Ticket, t.merged_into)
        return t

    def my_reports(self, phone: str, limit: int = 50) -> list[dict[str, Any]]:
        """A resident's reports (resident channel and hotline calls from the same number), newest first."""
        phone = normalize_phone(phone)
        with self.store.read() as s:
            rows = s.scalars(select(Report).where(Report.phone == phone).order_by(Report.id.desc()).limit(limit)).all()
            return [self._public_view(s, r, detail=False) for r in rows]

    def my_report(self, phone: str, report_id: int) -> dict[str, Any]:
        phone = normalize_phone(phone)
        with self.store.read() as s:
            r = s.get(Report, report_id)
            if r is None or r.phone != phone:
                raise ReportError("没有这条反映", status=404)
            return self._public_view(s, r, detail=True)

    def _public_view(self, s: Any, r: Report, detail: bool) -> dict[str, Any]:
        t = self._resolve(s, r.ticket_id)
        grid = self.grids.get(t.grid_code) if t else None
        survey = s.scalar(select(Survey).where(Survey.report_id == r.id))
        out = {"report_id": r.id, "channel": r.channel, "channel_label": CHANNEL_LABELS.get(r.channel, r.channel),
               "case_number": t.number if t else r.case_number, "status": t.status if t else "pending",
               "status_label": STATUS_LABELS.get(t.status, t.status) if t else "待受理", "category": r.category,
               "category_name": self.catalog.name(r.category), "urgency": r.urgency, "text": r.text, "address": r.address,
               "location": {"lon": r.lon, "lat": r.lat, "crs": "WGS84"}, "grid_name": grid.name if grid else None,
               "created_at": r.created_at.isoformat(), "closed_at": t.closed_at.isoformat() if t and t.closed_at else None,
               "can_rate": bool(t and t.status in ("closed", "rated") and (survey is None or survey.answered_at is None)),
               "rating": survey.score if survey and survey.answered_at else None, "photos": len(r.photos or [])}
        if detail and t is not None:
            hist = s.scalars(select(HistoryEntry).where(HistoryEntry.ticket_id == t.id).order_by(HistoryEntry.id)).all()
            out["timeline"] = [{"at": h.at.isoformat(), "action": h.action, "label": PUBLIC_ACTIONS[h.action],
                                "note": mask_text(h.note) if h.action in PUBLIC_NOTES else ""}
                               for h in hist if h.action in PUBLIC_ACTIONS]
        return out

    def add_info(self, phone: str, report_id: int, text: str, photos: Iterable[Photo] = ()) -> dict[str, Any]:
        """The resident adds text and photos to their open case (a ``comment`` on the ticket with the photos)."""
        phone = normalize_phone(phone)
        text = clean_text(text, min_chars=2, max_chars=self.cfg.max_text_chars)
        cleaned = self._photos(photos)
        with self.store.read() as s:
            r = s.get(Report, report_id)
            if r is None or r.phone != phone:
                raise ReportError("没有这条反映", status=404)
            t = self._resolve(s, r.ticket_id)
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
        return self.my_report(phone, report_id)

    # -- 回访 / rating ---------------------------------------------------------------------------
    def open_survey(self, s: Any, r: Report, t: Ticket, now: datetime) -> Survey:
        sv = s.scalar(select(Survey).where(Survey.report_id == r.id))
        if sv is None:
            sv = Survey(report_id=r.id, ticket_id=t.id, token=secrets.token_urlsafe(24), grid_code=t.grid_code,
                        unit_code=t.unit_code, department=t.department, category=t.category, sent_at=now,
                        expires_at=now + timedelta(days=self.cfg.survey_ttl_days), comment="")
            s.add(sv)
            s.flush()
        return sv

    def survey(self, token: str) -> dict[str, Any]:
        with self.store.read() as s:
            sv = s.scalar(select(Survey).where(Survey.token == token))
            if sv is None:
                raise ReportError("回访链接无效", status=404)
            t = s.get(Ticket, sv.ticket_id)
            return {"case_number": t.number, "category_name": self.catalog.name(t.category),
                    "closed_at": t.closed_at.isoformat() if t.closed_at else None, "answered": sv.answered_at is not None,
                    "score": sv.score, "expired": sv.expires_at < self.clock()}

    def rate(self, phone: str, report_id: int, score: int, comment: str = "", resolved: bool | None = None) -> dict[str, Any]:
        """The logged-in resident rates their closed case (same as answering the 回访 survey)."""
        phone = normalize_phone(phone)
        with self.store.write() as s:
            r = s.get(Report, report_id)
            if r is None or r.phone != phone:
                raise ReportError("没有这条反映", status=404)
            t = self._resolve(s, r.ticket_id)
            if t is None or t.status not in ("closed", "rated"):
                raise ReportError("案件办结后才能评价", status=409)
            token = self.open_survey(s, r, t, self.clock()).token
        return self.answer_survey(token, score, comment, resolved)

    def answer_survey(self, token: str, score: int, comment: str = "", resolved: bool | None = None) -> dict[str, Any]:
        """Record a 回访 answer (1–5); the first answer on a case also rates the ticket (→ 已评价)."""
        if not isinstance(score, int) or not 1 <= score <= 5:
            raise ReportError("评分须为1到5分", field="score")
        comment = (comment or "").strip()[:500]
        if comment:
            comment = clean_text(comment, min_chars=1, max_chars=500, field="comment")
        now = self.clock()
        with self.store.write() as s:
            sv = s.scalar(select(Survey).where(Survey.token == token))
            if sv is None:
                raise ReportError("回访链接无效", status=404)
            if sv.answered_at is not None:
                raise ReportError("您已评价过，感谢您的反馈", status=409)
            if sv.expires_at < now:
                raise ReportError("回访已过期", status=410)
            sv.score, sv.comment, sv.resolved, sv.answered_at = score, mask_text(comment), resolved, now
            r = s.get(Report, sv.report_id)
            ticket_id, who = sv.ticket_id, mask_phone(r.phone) if r.phone else "reporter"
        t = self.cases.get_ticket(ticket_id)
        if t["status"] == "closed":
            try:
                self.cases.transition(ticket_id, "rate", f"居民{who}", mask_text(comment), role="resident", score=score)
            except (TransitionError, ValueError) as exc:
                log.info("rating of ticket %s not recorded as a transition: %s", ticket_id, exc)
        else:
            self.cases.transition(ticket_id, "comment", f"居民{who}", f"回访评价 {score} 分 {mask_text(comment)}".strip(),
                                  role="resident")
        return {"ok": True, "score": score, "satisfied": score >= 4}

    # -- staff views -----------------------------------------------------------------------------
    def _check_staff_sees(self, r: Report, staff: Staff) -> None:
        if staff.scope is not None and (r.grid_code is None or r.grid_code not in staff.scope):
            raise ReportError("forbidden", status=403)

    def staff_view(self, r: Report, role: str) -> dict[str, Any]:
        """A report as a staff member sees it: phone and name masked unless the role calls people back."""
        full = role in UNMASKED_ROLES
        return {"id": r.id, "channel": r.channel, "line": r.line, "case_number": r.case_number, "ticket_id": r.ticket_id,
                "phone": (r.phone if full else mask_phone(r.phone)) if r.phone else None,
                "name": (r.name if full else mask_name(r.name)) if r.name else None,
                "staff": r.staff, "text": r.text if full else mask_text(r.text), "address": r.address,
                "location": {"lon": r.lon, "lat": r.lat, "crs": "WGS84"}, "crs_in": r.crs_in,
                "category": r.category, "category_name": self.catalog.name(r.category), "urgency": r.urgency,
                "suggested_category": r.suggested_category, "suggested_urgency": r.suggested_urgency,
                "confidence": r.confidence, "handover": r.handover, "photos": r.photos, "grid_code": r.grid_code,
                "created_at": r.created_at.isoformat(), "error": r.error}

    def list_reports(self, staff: Staff, *, channel: str | None = None, ticket_id: int | None = None,
                     offset: int = 0, limit: int = 50) -> dict[str, Any]:
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
            return {"total": total, "offset": offset, "limit": limit, "items": [self.staff_view(r, staff.role) for r in rows]}

    def get_report(self, report_id: int, staff: Staff) -> dict[str, Any]:
        with self.store.read() as s:
            r = s.get(Report, report_id)
            if r is None:
                raise ReportError("没有这条反映", status=404)
            self._check_staff_sees(r, staff)
            return self.staff_view(r, staff.role)
