"""回访: the satisfaction survey a reporter gets when their case closes, and its answer (1–5).

A survey is opened per report (a token for the SMS link) when the case closes or when the logged-in
resident rates it; the first answer on a case also performs the ``rate`` transition (→ 已评价), later
ones are comments on the ticket. The 满意率 figures over all answers are ``alerts.channels.satisfaction``.
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.channels.categories import Catalog
from alerts.channels.masking import mask_phone, mask_text
from alerts.channels.models import Report, Survey
from alerts.channels.screening import ReportError, clean_text
from alerts.lifecycle import TransitionError
from alerts.models import Ticket
from alerts.service import CaseService
from alerts.store import Store

log = logging.getLogger("alerts.channels")


@dataclass(frozen=True)
class SurveyView:
    """What the page behind a survey link shows before it is answered."""

    case_number: str
    category_name: str
    closed_at: datetime | None
    answered: bool
    score: int | None
    expired: bool


@dataclass(frozen=True)
class SurveyAnswer:
    ok: bool
    score: int
    satisfied: bool   # 4 or 5: counted as satisfied in 满意率


class Surveys:
    def __init__(self, store: Store, cases: CaseService, catalog: Catalog, *, ttl_days: int,
                 clock: Callable[[], datetime]):
        self.store, self.cases, self.catalog, self.ttl_days, self.clock = store, cases, catalog, ttl_days, clock

    def open(self, s: Session, r: Report, t: Ticket, now: datetime) -> Survey:
        """The report's survey, created on first need (in the caller's transaction)."""
        sv = s.scalar(select(Survey).where(Survey.report_id == r.id))
        if sv is None:
            sv = Survey(report_id=r.id, ticket_id=t.id, token=secrets.token_urlsafe(24), grid_code=t.grid_code,
                        unit_code=t.unit_code, department=t.department, category=t.category, sent_at=now,
                        expires_at=now + timedelta(days=self.ttl_days), comment="")
            s.add(sv)
            s.flush()
        return sv

    def view(self, token: str) -> SurveyView:
        with self.store.read() as s:
            sv = s.scalar(select(Survey).where(Survey.token == token))
            if sv is None:
                raise ReportError("回访链接无效", status=404)
            t = s.get(Ticket, sv.ticket_id)
            return SurveyView(t.number, self.catalog.name(t.category), t.closed_at, sv.answered_at is not None,
                              sv.score, sv.expires_at < self.clock())

    def answer(self, token: str, score: int, comment: str = "", resolved: bool | None = None) -> SurveyAnswer:
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
        return SurveyAnswer(True, score, score >= 4)
