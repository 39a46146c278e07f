"""The deployment's case rules in one place: which category an anomaly files under, and its time limits.

Intake, the lifecycle and the SLA loop all ask this object, so "which category" and "when is it
due" are answered the same way everywhere.
"""
from __future__ import annotations

from datetime import datetime

from alerts.calendar import WorkCalendar
from alerts.config import AlertsConfig, CategoryConfig
from alerts.grids import LEVELS
from alerts.models import Ticket
from ingest.anomaly import Anomaly


class CasePolicy:
    """Categories, deadlines and escalation levels of one deployment."""

    def __init__(self, cfg: AlertsConfig, calendar: WorkCalendar | None = None):
        self.cfg = cfg
        self.calendar = calendar or WorkCalendar(cfg.working_hours, cfg.timezone)
        self.by_code = {c.code: c for c in cfg.categories}
        self.by_kind: dict[str, CategoryConfig] = {}
        for c in cfg.categories:
            for k in c.anomaly_kinds:
                self.by_kind.setdefault(k, c)
        self.chain = list(cfg.escalation_chain)

    def category(self, code: str) -> CategoryConfig:
        """The category with that code; an unknown code (a category removed from config) gets defaults."""
        found = self.by_code.get(code)
        return found if found is not None else CategoryConfig(code=code if code.isdigit() else "0000", name=code)

    def classify(self, anomaly: Anomaly) -> CategoryConfig:
        """Category named by the anomaly, else the one listing its kind, else the default category."""
        if anomaly.category and anomaly.category in self.by_code:
            return self.by_code[anomaly.category]
        if anomaly.kind in self.by_kind:
            return self.by_kind[anomaly.kind]
        return self.category(self.cfg.default_category)

    # -- levels ------------------------------------------------------------------------------
    def level_index(self, level: str) -> int:
        """Position of a grid level on the escalation chain (a level not on it maps to the next one up)."""
        if level in self.chain:
            return self.chain.index(level)
        rank = LEVELS.index(level)
        for i, lvl in enumerate(self.chain):
            if LEVELS.index(lvl) < rank:
                return i
        return 0

    # -- timers ------------------------------------------------------------------------------
    def arm_sign(self, ticket: Ticket, now: datetime) -> None:
        """Start the sign-for (签收) clock: deadline, reminder and escalation time."""
        cat = self.category(ticket.category)
        ticket.sign_deadline = self.calendar.add(now, cat.sign_within)
        ticket.remind_at = self.calendar.fraction_point(now, ticket.sign_deadline, cat.sign_within, self.cfg.remind_at_fraction)
        ticket.escalate_at = ticket.sign_deadline
        if ticket.handle_deadline is None or ticket.handle_deadline < ticket.sign_deadline:
            ticket.handle_deadline = self.calendar.add(now, cat.handle_within)

    def arm_handle(self, ticket: Ticket, now: datetime) -> None:
        """Start the handling (处置) clock from the moment of signing."""
        cat = self.category(ticket.category)
        ticket.handle_deadline = self.calendar.add(now, cat.handle_within)
        ticket.remind_at = self.calendar.fraction_point(now, ticket.handle_deadline, cat.handle_within, self.cfg.remind_at_fraction)
        ticket.escalate_at = ticket.handle_deadline

    def rearm_after_escalation(self, ticket: Ticket, now: datetime, signing: bool) -> None:
        """After an escalation the new level gets a fresh period; missing it escalates again (or, at the top, flags it)."""
        cat = self.category(ticket.category)
        limit = cat.sign_within if signing else cat.handle_within
        nxt = self.calendar.add(now, limit)
        if signing:
            ticket.sign_deadline = nxt
        ticket.escalate_at = nxt
        ticket.remind_at = self.calendar.fraction_point(now, nxt, limit, self.cfg.remind_at_fraction)

    @staticmethod
    def disarm(ticket: Ticket) -> None:
        ticket.remind_at = None
        ticket.escalate_at = None
