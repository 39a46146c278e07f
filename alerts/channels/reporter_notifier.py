"""Telling reporters what happens to their case, and sending the 回访 survey after closure.

``ReporterNotifier`` reads the ticket events stream (``{prefix}:events``) through its own consumer group
``channels``, so every transition made anywhere (console, REST, MQTT, SLA loop) reaches the reporters.
Stages: accepted (受理), dispatched (派遣), merged (合并), closed (办结 + survey link), void (作结).
Each (report, stage, medium) is recorded once in ``channel_notifications`` before sending, so a
re-delivered event or a second process never sends twice. It also joins a new camera ticket with an
open report ticket about the same spot (``ReportMerges.join_across``).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from alerts.channels.masking import mask_phone
from alerts.channels.merges import ReportMerges, current_ticket
from alerts.channels.models import Notification, Report
from alerts.channels.sms import DeliveryError, SmsGateway, WeChatWebhook
from alerts.channels.surveys import Surveys
from alerts.core import Core
from alerts.events import ensure_group
from alerts.models import Occurrence, Ticket
from alerts.streams import dead_letter
from ingest.backoff import Backoff

log = logging.getLogger("alerts.channels")

GROUP = "channels"
CLOSE_ACTIONS = {"ticket.close", "ticket.auto_close", "ticket.closed"}
DISPATCH_ACTIONS = {"ticket.register", "ticket.dispatch"}
VOID_ACTIONS = {"ticket.void", "ticket.false_alarm"}


class ReporterNotifier:
    """Consumes ticket events and notifies the people who reported the case."""

    def __init__(self, core: Core, merges: ReportMerges, surveys: Surveys, sms: SmsGateway,
                 wechat: WeChatWebhook | None = None, *, public_url: str, consumer: str = "channels-1",
                 batch: int = 100, claim_idle_s: float = 30.0):
        self.store, self.grids, self.catalog = core.parts.store, core.parts.grids, core.catalog
        self.merges, self.surveys, self.sms, self.wechat = merges, surveys, sms, wechat
        self.public_url, self.clock = public_url, core.clock
        self.redis: redis.Redis = core.parts.redis
        self.keys = core.parts.keys
        self.consumer, self.batch = consumer, batch
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self._ready = False
        self._last_claim = 0.0
        self.stats = {"events": 0, "sent": 0, "failed": 0, "joined": 0}

    # -- the stream ------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        if not self._ready:
            ensure_group(self.redis, self.keys.events, GROUP)
            self._ready = True

    def process_batch(self, block_ms: int = 1000) -> int:
        """Handle waiting events (stale ones first); returns how many were handled."""
        self.ensure_group()
        entries: list[tuple[Any, dict]] = []
        now = time.monotonic()
        if now - self._last_claim >= self.claim_idle_ms / 2000:
            self._last_claim = now
            reply = self.redis.xautoclaim(self.keys.events, GROUP, self.consumer, self.claim_idle_ms, start_id="0-0",
                                          count=self.batch)
            entries += [(e[0], e[1]) for e in reply[1] if e and e[1] is not None]
        if not entries:
            reply = self.redis.xreadgroup(GROUP, self.consumer, {self.keys.events: ">"}, count=self.batch,
                                          block=block_ms or None)
            for _stream, items in reply or []:
                entries += [(eid, f) for eid, f in items if f is not None]
        done = 0
        for eid, fields in entries:
            raw = fields.get(b"event", fields.get("event", b""))
            try:
                event = json.loads(raw)
                self.handle(event)
            except OperationalError as exc:
                log.warning("store unavailable, event %s stays pending: %s", eid, exc.orig)
                continue
            except Exception as exc:
                log.exception("event %s could not be handled", eid)
                dead_letter(self.redis, self.keys, "channels", f"{type(exc).__name__}: {str(exc)[:300]}", raw or b"")
            self.redis.xack(self.keys.events, GROUP, eid)
            done += 1
        return done

    def run_forever(self, stop: threading.Event, block_ms: int = 1000) -> None:
        """Process until ``stop`` is set; Redis outages are retried with back-off."""
        backoff = Backoff(0.5, 30)
        while not stop.is_set():
            try:
                self.process_batch(block_ms)
                backoff.reset()
            except redis.RedisError as exc:
                delay = backoff.next_delay()
                log.warning("notifier: redis error %s; retrying in %.1fs", exc, delay)
                self._ready = False
                stop.wait(delay)

    # -- one event -------------------------------------------------------------------------------
    def handle(self, event: dict[str, Any]) -> None:
        etype = event.get("type", "")
        ticket = event.get("ticket") or {}
        tid = ticket.get("id")
        self.stats["events"] += 1
        if tid is None:
            return
        if etype == "ticket.created":
            if (ticket.get("source") or {}).get("kind") == "camera":
                if self.merges.join_across(int(tid)):
                    self.stats["joined"] += 1
                return
            self._for_anomaly(event.get("anomaly_id"), "accepted")
            if ticket.get("status") == "dispatched":
                self._for_anomaly(event.get("anomaly_id"), "dispatched")
        elif etype == "ticket.occurrence":
            self._for_anomaly(event.get("anomaly_id"), "accepted")
            if ticket.get("status") not in ("reported", "registered"):
                self._for_anomaly(event.get("anomaly_id"), "dispatched")
        elif etype in DISPATCH_ACTIONS:
            self._for_ticket(int(tid), "dispatched")
        elif etype == "ticket.merged":
            into = (event.get("into") or {}).get("id")
            if into is not None:
                self.merges.retarget(int(tid), int(into))
                self._for_ticket(int(into), "merged", only_from=int(tid))
        elif etype == "ticket.unmerged":
            self.merges.restore(int(tid))
        elif etype in CLOSE_ACTIONS:
            self._for_ticket(int(tid), "closed")
        elif etype in VOID_ACTIONS:
            self._for_ticket(int(tid), "void", note=event.get("note", ""))

    def _for_anomaly(self, anomaly_id: str | None, stage: str) -> None:
        if not anomaly_id:
            return
        with self.store.read() as s:
            r = s.scalar(select(Report).where(Report.anomaly_id == anomaly_id))
            rid = r.id if r is not None else None
        if rid is not None:
            self._notify(rid, stage)

    def _for_ticket(self, ticket_id: int, stage: str, only_from: int | None = None, note: str = "") -> None:
        with self.store.read() as s:
            q = select(Report.id).where(Report.ticket_id == ticket_id)
            if only_from is not None:
                q = select(Report.id).where(Report.ticket_id == ticket_id, Report.original_ticket_id == only_from)
            ids = list(s.scalars(q))
        for rid in ids:
            self._notify(rid, stage, note)

    # -- messages --------------------------------------------------------------------------------
    def _text(self, stage: str, r: Report, t: Ticket, survey_token: str | None, note: str) -> str:
        cat = self.catalog.name(r.category).split("-")[-1]
        grid = self.grids.get(t.unit_code) or self.grids.get(t.grid_code)
        url = self.public_url.rstrip("/")
        if stage == "accepted":
            return (f"您反映的“{cat}”问题已受理，案件编号{t.number}。"
                    f"可登录 {url}/report/ 用本机号码查询进度。")
        if stage == "dispatched":
            return f"您反映的问题（案件{t.number}）已派遣至{grid.name if grid else '责任网格'}处理。"
        if stage == "merged":
            return f"您反映的问题已并入案件{t.number}统一处理，后续进展将继续通知您。"
        if stage == "closed":
            return (f"您反映的问题（案件{t.number}）已办结。请对处理结果进行评价："
                    f"{url}/report/#survey={survey_token}")
        return f"您反映的问题（案件{t.number}）已作结。{note[:60]}".strip()

    def _notify(self, report_id: int, stage: str, note: str = "") -> None:
        now = self.clock()
        with self.store.write() as s:
            r = s.get(Report, report_id)
            if r is None or (not r.phone and not r.wechat_openid):
                return
            ticket_id = r.ticket_id
            if ticket_id is None:   # the event can overtake the report's own update after filing
                ticket_id = s.scalar(select(Occurrence.ticket_id).where(Occurrence.anomaly_id == r.anomaly_id))
            t = current_ticket(s, ticket_id)
            if t is None:
                return
            token = self.surveys.open(s, r, t, now).token if stage == "closed" else None
            text = self._text(stage, r, t, token, note)
            phone, openid, ticket_id = r.phone, r.wechat_openid, t.id
        media: list[tuple[str, str]] = []
        if phone:
            media.append(("sms", phone))
        if openid and self.wechat is not None:
            media.append(("wechat", openid))
        for medium, to in media:
            if not self._claim(report_id, ticket_id, stage, medium, text, now):
                continue
            try:
                if medium == "sms":
                    self.sms.send(to, text, purpose=stage)
                else:
                    self.wechat.send(to, text, purpose=stage)
                self.stats["sent"] += 1
            except DeliveryError as exc:
                self.stats["failed"] += 1
                log.warning("%s to %s about case %s failed: %s", medium, mask_phone(to), ticket_id, exc)
                with self.store.write() as s:
                    n = s.scalar(select(Notification).where(Notification.report_id == report_id,
                                                            Notification.stage == stage, Notification.medium == medium))
                    n.ok, n.error = False, str(exc)[:500]

    def _claim(self, report_id: int, ticket_id: int, stage: str, medium: str, text: str, now: datetime) -> bool:
        try:
            with self.store.write() as s:
                s.add(Notification(report_id=report_id, ticket_id=ticket_id, stage=stage, medium=medium, text=text,
                                   at=now, ok=True))
            return True
        except IntegrityError:
            return False
