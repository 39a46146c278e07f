"""CaseService: the one API the gateway (REST, WebSocket, CLI) calls to read and work cases.

Every change goes through ``lifecycle.apply`` inside one SQL transaction that also appends the
history and the outbox row of the duty-queue entries, acknowledgements and events the change implies
(``alerts.outbox``); they are published to Redis after the commit, by this process or, if it died, by
any process's outbox relay. Reads return plain dicts (``alerts.views``), never ORM rows.
Visibility: a user sees the tickets whose grid lies within one of their grid codes (any level).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

import redis
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from alerts import kpis as kpi_mod
from alerts import lifecycle
from alerts.config import AlertsConfig
from alerts.events import Effects
from alerts.grids import GridIndex
from alerts.filing import Clock, Desk, NewTicket, open_ticket, utcnow
from alerts.lifecycle import OPEN, TransitionError
from alerts.models import HistoryEntry, Occurrence, Suppression, Ticket
from alerts.policy import CasePolicy
from alerts.outbox import Outbox
from alerts.store import Store
from alerts.streams import StreamKeys
from alerts.views import ticket_detail, ticket_summary
from ingest.failpoints import failpoint

__all__ = ["CaseService", "TicketNotFound", "NotVisible", "TransitionError"]


class TicketNotFound(LookupError):
    """No ticket has that id or case number."""


class NotVisible(PermissionError):
    """The ticket lies outside every grid the user may see."""


def _visible_clause(codes: Iterable[str]):
    codes = [c for c in codes if c]
    return or_(*[Ticket.grid_code.startswith(c) for c in codes], *[Ticket.unit_code.startswith(c) for c in codes])


@dataclass(frozen=True)
class Page:
    total: int
    offset: int
    limit: int
    items: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "offset": self.offset, "limit": self.limit, "items": self.items}


class CaseService:
    """Reading and working cases; safe to share between threads (each call opens its own session)."""

    def __init__(self, store: Store, grids: GridIndex, alerts_cfg: AlertsConfig, redis: redis.Redis, keys: StreamKeys,
                 *, policy: CasePolicy | None = None, clock: Clock = utcnow, outbox: Outbox | None = None):
        self.store, self.grids, self.cfg, self.redis, self.keys = store, grids, alerts_cfg, redis, keys
        self.outbox = outbox or Outbox(store, redis, keys)
        self.policy = policy or CasePolicy(alerts_cfg)
        self.clock = clock
        self.desk = Desk.of(store, alerts_cfg, self.policy, grids)

    # -- reading -----------------------------------------------------------------------------
    def list_tickets(self, *, grids: Iterable[str] | None = None, status: str | Iterable[str] | None = None,
                     category: str | Iterable[str] | None = None, since: datetime | None = None,
                     until: datetime | None = None, text: str | None = None, open_only: bool = False,
                     offset: int = 0, limit: int = 50, newest_first: bool = True) -> Page:
        """Tickets matching the filters, newest first; ``grids`` = the codes the user may see (None: all)."""
        limit = max(1, min(int(limit), 500))
        offset = max(0, int(offset))
        q = select(Ticket).where(Ticket.status != "merged") if status is None else select(Ticket)
        if grids is not None:
            grids = list(grids)
            if not grids:
                return Page(0, offset, limit, [])
            q = q.where(_visible_clause(grids))
        if status is not None:
            q = q.where(Ticket.status.in_([status] if isinstance(status, str) else list(status)))
        if open_only:
            q = q.where(Ticket.status.in_(OPEN))
        if category is not None:
            cats = [category] if isinstance(category, str) else list(category)
            q = q.where(or_(*[Ticket.category.startswith(c) for c in cats]))
        if since is not None:
            q = q.where(Ticket.created_at >= since)
        if until is not None:
            q = q.where(Ticket.created_at < until)
        if text:
            like = f"%{text}%"
            q = q.where(or_(Ticket.title.like(like), Ticket.number.like(like), Ticket.address.like(like)))
        with self.store.read() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            order = Ticket.id.desc() if newest_first else Ticket.id.asc()
            rows = s.scalars(q.order_by(order).offset(offset).limit(limit)).all()
            return Page(total or 0, offset, limit, [ticket_summary(t) for t in rows])

    def _load(self, s: Session, ref: int | str, *, detail: bool = False, lock: bool = False) -> Ticket:
        q = select(Ticket)
        if detail:
            q = q.options(selectinload(Ticket.occurrences), selectinload(Ticket.history), selectinload(Ticket.ratings))
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            q = q.where(Ticket.id == int(ref))
        else:
            q = q.where(Ticket.number == str(ref))
        if lock:
            q = q.with_for_update(of=Ticket)  # PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already serialises writers
        t = s.scalars(q).first()
        if t is None:
            raise TicketNotFound(f"no ticket {ref!r}")
        return t

    @staticmethod
    def _check_visible(t: Ticket, grids: Iterable[str] | None) -> None:
        if grids is None:
            return
        if not any(t.grid_code.startswith(c) or t.unit_code.startswith(c) for c in grids):
            raise NotVisible(f"ticket {t.number} is outside your grids")

    def get_ticket(self, ref: int | str, *, grids: Iterable[str] | None = None) -> dict[str, Any]:
        """One ticket by id or case number, with occurrences, evidence, history, ratings and allowed actions."""
        with self.store.read() as s:
            t = self._load(s, ref, detail=True)
            self._check_visible(t, grids)
            out = ticket_detail(t)
            out["allowed_actions"] = lifecycle.allowed_actions(t.status, None, t.extension_requested is not None)
            return out

    def allowed_actions(self, ticket: int | str | dict[str, Any], role: str) -> list[str]:
        """Actions this role may take on the ticket now (for the buttons of the console)."""
        if isinstance(ticket, dict):
            status, pending = ticket["status"], ticket.get("extension_requested") is not None
        else:
            with self.store.read() as s:
                t = self._load(s, ticket)
                status, pending = t.status, t.extension_requested is not None
        acts = lifecycle.allowed_actions(status, role, pending)
        if role in ("dispatcher", "admin"):
            acts += ["merge"] if status in OPEN else []
            acts += ["unmerge"] if status == "merged" else []
        return acts

    def queue_for(self, grid_codes: Iterable[str], *, include_below: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        """The duty queue of these units from the store: open tickets they hold, most urgent first."""
        codes = list(grid_codes)
        if not codes:
            return []
        unit = or_(*[Ticket.unit_code.startswith(c) for c in codes]) if include_below else Ticket.unit_code.in_(codes)
        q = (select(Ticket).where(unit, Ticket.status.in_(("dispatched", "signed", "handling")))
             .order_by(Ticket.escalate_at.is_(None), Ticket.escalate_at, Ticket.id).limit(limit))
        with self.store.read() as s:
            return [ticket_summary(t) for t in s.scalars(q)]

    def kpis(self, **filters: Any) -> dict[str, Any]:
        """Case KPIs (按期签收率, 按期结案率, 返工率, 延期率, times, 满意率); see ``alerts.kpis.compute``."""
        return kpi_mod.compute(self.store, self.cfg, **filters)

    # -- working cases -----------------------------------------------------------------------
    def transition(self, ticket_id: int | str, action: str, actor: str, note: str = "",
                   attachments: list[Any] | None = None, *, role: str | None = None,
                   grids: Iterable[str] | None = None, **params: Any) -> dict[str, Any]:
        """Perform a workflow action; raises TransitionError (state/role), ValueError (parameters), NotVisible, TicketNotFound."""
        if action == "merge":
            return self.merge(ticket_id, params["into"], actor, note, role=role, grids=grids)
        if action == "unmerge":
            return self.unmerge(ticket_id, actor, note, role=role, grids=grids)
        now = self.clock()
        with self.store.write() as s:
            t = self._load(s, ticket_id, lock=True)
            self._check_visible(t, grids)
            unit_before = t.unit_code
            if action in ("register", "dispatch") and params.get("unit_code"):
                g = self.grids.get(str(params["unit_code"]))
                if g is None:
                    raise ValueError(f"unknown unit_code {params['unit_code']!r}")
                params["level_index"] = self.policy.level_index(g.level)
            out = lifecycle.apply(t, action, actor, now, self.policy, role=role, note=note, attachments=attachments, **params)
            effects = self._after(s, t, out, unit_before, now, actor)
            summary = ticket_summary(t)
            effects.events.append((f"ticket.{action}", summary, {"actor": actor, "note": note}))
            pending = self.outbox.stage(s, effects, now)
        failpoint("case.after_commit")
        self.outbox.publish(pending)
        return self.get_ticket(summary["id"])

    def _after(self, s: Session, t: Ticket, out: lifecycle.Outcome, unit_before: str, now: datetime, actor: str) -> Effects:
        s.add(out.history)
        if out.rating is not None:
            s.add(out.rating)
        if out.suppress is not None:
            s.add(Suppression(**out.suppress, reason=out.history.note, created_by=actor, created_at=now, ticket_id=t.id, hits=0))
        effects = Effects()
        if out.ack_duty or (out.publish_duty and unit_before != t.unit_code):
            effects.ack_duty.append((unit_before, t.id))
        s.flush()
        if out.publish_duty:
            effects.duty.append((t.unit_code, ticket_summary(t), out.history.action))
        return effects

    def merge(self, ticket_id: int | str, into: int | str, actor: str, note: str = "", *, role: str | None = None,
              grids: Iterable[str] | None = None) -> dict[str, Any]:
        """Merge one open ticket into another (duplicates of the same event); reversible with ``unmerge``."""
        lifecycle.check_merge_role("merge", role)
        now = self.clock()
        with self.store.write() as s:
            src, dst = self._load(s, ticket_id, lock=True), self._load(s, into, lock=True)
            self._check_visible(src, grids)
            self._check_visible(dst, grids)
            moved = s.scalars(select(Occurrence).where(Occurrence.ticket_id == src.id)).all()
            out = lifecycle.merge(src, dst, actor, now, self.policy, role=role, note=note, moved=[o.id for o in moved])
            for o in moved:
                o.original_ticket_id = o.original_ticket_id or src.id
                o.ticket_id = dst.id
            for child in s.scalars(select(Ticket).where(Ticket.merged_into == src.id)):
                child.merged_into = dst.id
            dst.occurrence_count += len(moved)
            dst.last_seen_at = max(dst.last_seen_at, src.last_seen_at)
            dst.first_seen_at = min(dst.first_seen_at, src.first_seen_at)
            s.add_all(out.history)
            effects = Effects(ack_duty=[(src.unit_code, src.id)])
            effects.events.append(("ticket.merged", ticket_summary(src), {"into": ticket_summary(dst), "actor": actor}))
            dst_id = dst.id
            pending = self.outbox.stage(s, effects, now)
        self.outbox.publish(pending)
        return self.get_ticket(dst_id)

    def unmerge(self, ticket_id: int | str, actor: str, note: str = "", *, role: str | None = None,
                grids: Iterable[str] | None = None) -> dict[str, Any]:
        """Reverse a manual merge: the ticket gets its own occurrences and state back."""
        lifecycle.check_merge_role("unmerge", role, "merged")
        now = self.clock()
        with self.store.write() as s:
            src = self._load(s, ticket_id, lock=True)
            self._check_visible(src, grids)
            dst = s.get(Ticket, src.merged_into) if src.merged_into is not None else None
            back = [] if dst is None else s.scalars(select(Occurrence).where(
                Occurrence.ticket_id == dst.id, Occurrence.original_ticket_id == src.id)).all()
            out = lifecycle.unmerge(src, dst, actor, now, self.policy, role=role, note=note, back=[o.id for o in back])
            for o in back:
                o.ticket_id, o.original_ticket_id = src.id, None
            dst.occurrence_count -= len(back)
            s.add_all(out.history)
            effects = Effects()
            if out.publish_duty:
                effects.duty.append((src.unit_code, ticket_summary(src), "unmerged"))
            effects.events.append(("ticket.unmerged", ticket_summary(src), {"from": dst.id, "actor": actor}))
            src_id = src.id
            pending = self.outbox.stage(s, effects, now)
        self.outbox.publish(pending)
        return self.get_ticket(src_id)

    def split_occurrence(self, occurrence_id: int, actor: str, note: str = "", *, role: str | None = None,
                         grids: Iterable[str] | None = None) -> dict[str, Any]:
        """Reverse an automatic merge: one occurrence leaves its ticket and becomes a ticket of its own."""
        lifecycle.check_merge_role("split", role)
        now = self.clock()
        with self.store.write() as s:
            occ = s.get(Occurrence, int(occurrence_id))
            if occ is None:
                raise TicketNotFound(f"no occurrence {occurrence_id}")
            old = s.get(Ticket, occ.ticket_id)
            self._check_visible(old, grids)
            if old.occurrence_count <= 1:
                raise ValueError("the ticket has only this occurrence; nothing to split off")
            old.occurrence_count -= 1
            old.updated_at = now
            occ.merged, occ.original_ticket_id = False, None
            t, effects = open_ticket(s, self.desk, NewTicket(self.policy.category(old.category), occ, now, title=occ.title,
                                                             actor=actor, note=f"从 {old.number} 拆分: {note}".strip()))
            s.add(HistoryEntry(ticket_id=old.id, at=now, actor=actor, action="split", from_status=old.status,
                               to_status=old.status, note=note, attachments=[], data={"occurrence": occ.id, "to": t.id, "to_number": t.number}))
            new_id = t.id
            pending = self.outbox.stage(s, effects, now)
        self.outbox.publish(pending)
        return self.get_ticket(new_id)
