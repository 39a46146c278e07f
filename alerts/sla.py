"""Deadlines that act: reminders (催办) and escalation up the grid hierarchy, from a durable timer.

The timer is the store itself: every open ticket carries ``remind_at`` and ``escalate_at``, and
``Escalator.scan()`` handles every ticket whose time has come. After a restart the first scan
finds tickets that went overdue while nothing ran and escalates them at once; nothing is kept
in memory. A missed sign-for moves the ticket one step up ``escalation_chain`` (grid → community
→ street → district): its unit becomes the ancestor at that level, which gets a fresh sign-for
period, the ticket is put on that unit's duty queue, and whoever is on duty there (``Roster``) is
named in the event so notifications reach them. A missed handling deadline escalates the same
way. At the top of the chain the ticket stays overdue and supervised. The clock is injectable.
On PostgreSQL rows are taken with ``FOR UPDATE SKIP LOCKED`` so several scanners can run.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime

import redis
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from alerts import lifecycle
from alerts.config import AlertsConfig
from alerts.events import Effects
from alerts.grids import GridIndex
from alerts.filing import Clock, utcnow
from alerts.lifecycle import OPEN, UNSIGNED
from alerts.models import Ticket
from alerts.policy import CasePolicy
from alerts.roster import Roster
from alerts.outbox import Outbox
from alerts.store import Store
from alerts.streams import StreamKeys
from alerts.views import ticket_summary
from ingest.failpoints import failpoint

log = logging.getLogger(__name__)


class Escalator:
    """Scans the store for due reminders and escalations and carries them out."""

    def __init__(self, store: Store, grids: GridIndex, alerts_cfg: AlertsConfig, redis: redis.Redis, keys: StreamKeys,
                 *, policy: CasePolicy | None = None, roster: Roster | None = None, clock: Clock = utcnow, batch: int = 100,
                 outbox: Outbox | None = None):
        self.store, self.grids, self.cfg, self.redis, self.keys = store, grids, alerts_cfg, redis, keys
        self.outbox = outbox or Outbox(store, redis, keys)
        self.policy = policy or CasePolicy(alerts_cfg)
        self.roster = roster or Roster(alerts_cfg.roster, alerts_cfg.timezone, grids)
        self.clock = clock
        self.batch = batch

    def _next_unit(self, t: Ticket) -> tuple[int, str] | None:
        """The next level up the chain that exists above the ticket's grid: (level index, unit code)."""
        by_level = {g.level: g.code for g in self.grids.ancestors(t.grid_code)}
        for idx in range(t.escalation_level + 1, len(self.policy.chain)):
            code = by_level.get(self.policy.chain[idx])
            if code is not None and code != t.unit_code:
                return idx, code
        return None

    def scan(self) -> dict[str, int]:
        """Handle every due reminder and escalation; returns counts. Safe to call from several processes."""
        now = self.clock()
        done = {"reminded": 0, "escalated": 0}
        while True:
            with self.store.write() as s:
                q = (select(Ticket).where(Ticket.status.in_(OPEN), or_(Ticket.escalate_at <= now, Ticket.remind_at <= now))
                     .order_by(Ticket.id).limit(self.batch).with_for_update(skip_locked=True))
                rows = s.scalars(q).all()
                effects = Effects()
                for t in rows:
                    if t.escalate_at is not None and t.escalate_at <= now:
                        effects.extend(self._escalate(s, t, now))
                        done["escalated"] += 1
                    elif t.remind_at is not None and t.remind_at <= now:
                        effects.extend(self._remind(s, t, now))
                        done["reminded"] += 1
                pending = self.outbox.stage(s, effects, now)  # the escalations' duty entries commit with them
            failpoint("sla.after_commit")
            self.outbox.publish(pending)
            if len(rows) < self.batch:
                return done

    def _remind(self, s: Session, t: Ticket, now: datetime) -> Effects:
        users = self.roster.users(t.unit_code, now)
        deadline = t.sign_deadline if t.status in UNSIGNED else t.handle_deadline
        out = lifecycle.apply(t, "remind", "system", now, self.policy, note=f"临近时限 {deadline.isoformat() if deadline else ''}")
        out.history.data = {"notify": users}
        s.add(out.history)
        t.remind_at = None
        return Effects(events=[("ticket.remind", ticket_summary(t), {"notify": users, "deadline": deadline.isoformat() if deadline else None})])

    def _escalate(self, s: Session, t: Ticket, now: datetime) -> Effects:
        signing = t.status in UNSIGNED
        if signing:
            t.sign_overdue = True
        else:
            t.handle_overdue = True
        nxt = self._next_unit(t)
        effects = Effects()
        if nxt is None:
            # Top of the chain: nobody above to hand it to; it stays overdue, under supervision, and is reminded.
            t.escalate_at = t.remind_at = None
            t.supervised = True
            users = self.roster.users(t.unit_code, now)
            out = lifecycle.apply(t, "remind", "system", now, self.policy, note="已超时限，最高层级督办")
            out.history.data = {"notify": users, "overdue": "sign" if signing else "handle"}
            s.add(out.history)
            effects.events.append(("ticket.overdue", ticket_summary(t), {"notify": users}))
            return effects
        level_idx, unit = nxt
        old_unit, old_level = t.unit_code, self.policy.chain[t.escalation_level]
        # The state machine hands it to the next unit up (its rules and history hold here too), then the new
        # level gets a fresh period.
        out = lifecycle.apply(t, "escalate", "system", now, self.policy, unit_code=unit, level_index=level_idx,
                              note=f"{'签收' if signing else '处置'}超时，{old_level} → {self.policy.chain[level_idx]}")
        self.policy.rearm_after_escalation(t, now, signing)
        users = self.roster.users(unit, now)
        out.history.data = {"from_unit": old_unit, "to_unit": unit, "level": self.policy.chain[level_idx],
                            "overdue": "sign" if signing else "handle", "notify": users}
        s.add(out.history)
        summary = ticket_summary(t)
        effects.ack_duty.append((old_unit, t.id))
        effects.duty.append((unit, summary, "escalated"))
        effects.events.append(("ticket.escalate", summary, {"from_unit": old_unit, "notify": users}))
        return effects

    def run_forever(self, stop_event: threading.Event, interval_s: float | None = None) -> None:
        """Scan every ``interval_s`` (config ``sla_scan_interval_s``) until stopped; errors are logged and retried."""
        interval = interval_s if interval_s is not None else self.cfg.sla_scan_interval_s
        while not stop_event.is_set():
            try:
                self.scan()
            except Exception:  # the timer must survive a database or Redis hiccup
                log.exception("SLA scan failed; retrying")
            stop_event.wait(interval)
