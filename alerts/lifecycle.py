"""The case workflow as a state machine (after GB/T 30428: 信息收集 → 立案 → 派遣 → 处置 → 反馈 → 核查结案 → 评价).

States::

    reported ─register─► dispatched ─sign─► signed ─start─► handling ─feedback─► feedback ─verify─► verified ─close─► closed ─rate─► rated
    registered ─dispatch─┘   │  ▲                    │  ▲                             │
        ▲                    │  └──── (escalate: same state, next level up) ───────────┘
        └──── return (回退) ──┘             handling ◄── rework (返工) ── feedback
    any open state ─void─► void   ─false_alarm─► false_alarm   ─merge─► merged (unmerge restores)

Actions that keep the state: request_extension / approve_extension / deny_extension (延期),
supervise (督办), remind (催办), comment, escalate (the unit moves up the chain), clear. ``apply`` checks
the state and the role, changes the ticket's fields and returns the history entry to append; it does no
I/O, so the whole workflow is testable without a database, and the service commits it in one transaction.

Every change of a ticket's status or responsible unit is made here, whoever asks: ``create`` (intake and a
split: 接报, then the automatic 派遣), ``apply`` (every workflow action, the escalator's change of unit
included), ``merge`` / ``unmerge`` (the case service). So the rules and the history hold on every path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from alerts.models import HistoryEntry, Rating, Ticket
from alerts.policy import CasePolicy

ROLES = ("operator", "dispatcher", "grid_worker", "grid_leader", "supervisor", "admin", "resident", "system")

STATUS_LABELS = {
    "reported": "接报", "registered": "已立案", "dispatched": "已派遣", "signed": "已签收", "handling": "处置中",
    "feedback": "已反馈", "verified": "已核查", "closed": "已结案", "rated": "已评价",
    "void": "已作废", "false_alarm": "误报", "merged": "已合并",
}
OPEN = frozenset({"reported", "registered", "dispatched", "signed", "handling", "feedback", "verified"})
TERMINAL = frozenset({"closed", "rated", "void", "false_alarm", "merged"})
UNSIGNED = frozenset({"reported", "registered", "dispatched"})
IN_HANDS = frozenset({"signed", "handling"})


class TransitionError(ValueError):
    """An action that the ticket's state or the actor's role does not allow; says what would be allowed."""

    def __init__(self, state: str, action: str, allowed: Iterable[str], reason: str = ""):
        self.state, self.action, self.allowed = state, action, sorted(allowed)
        why = f": {reason}" if reason else ""
        super().__init__(f"cannot {action!r} a ticket in state {state!r}{why}; "
                         f"allowed actions: {', '.join(self.allowed) or 'none'}")


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    sources: frozenset[str]
    target: str | None          # None: the state does not change
    roles: frozenset[str]
    needs_note: bool = False


def _a(name: str, label: str, sources: Iterable[str], target: str | None, roles: Iterable[str], needs_note: bool = False) -> Action:
    return Action(name, label, frozenset(sources), target, frozenset(roles) | {"system", "admin"}, needs_note)


_WORKERS = ("grid_worker", "grid_leader")
_DISPATCH = ("dispatcher", "grid_leader")
_VERIFY = ("dispatcher", "supervisor")
ACTIONS: dict[str, Action] = {a.name: a for a in [
    _a("register", "立案", {"reported"}, "dispatched", ("operator", "dispatcher")),
    _a("dispatch", "派遣", {"registered"}, "dispatched", _DISPATCH),
    _a("sign", "签收", {"dispatched"}, "signed", _WORKERS),
    _a("start", "处置", {"signed"}, "handling", _WORKERS),
    _a("feedback", "反馈", {"signed", "handling"}, "feedback", _WORKERS),
    _a("verify", "核查通过", {"feedback"}, "verified", _VERIFY),
    _a("rework", "返工", {"feedback"}, "handling", _VERIFY, needs_note=True),
    _a("close", "结案", {"verified"}, "closed", ("dispatcher",)),
    _a("rate", "评价", {"closed"}, "rated", ("operator", "dispatcher", "supervisor", "resident")),
    _a("request_extension", "延期申请", IN_HANDS, None, _WORKERS, needs_note=True),
    _a("approve_extension", "延期批准", IN_HANDS, None, ("dispatcher", "grid_leader", "supervisor")),
    _a("deny_extension", "延期驳回", IN_HANDS, None, ("dispatcher", "grid_leader", "supervisor")),
    _a("return", "回退", {"dispatched", "signed"}, "registered", _WORKERS, needs_note=True),
    _a("supervise", "督办", OPEN, None, ("supervisor",)),
    _a("remind", "催办", OPEN, None, ("dispatcher", "grid_leader", "supervisor")),
    _a("comment", "备注", OPEN | TERMINAL, None, ROLES),
    _a("void", "作废", OPEN, "void", ("dispatcher",), needs_note=True),
    _a("false_alarm", "误报", OPEN, "false_alarm", ("operator", "dispatcher"), needs_note=True),
    _a("escalate", "升级", OPEN - {"verified"}, None, ()),
    _a("clear", "告警解除", OPEN | TERMINAL, None, ()),
    _a("auto_close", "自动结案", OPEN, "closed", ()),
]}


def allowed_actions(status: str, role: str | None = None, extension_pending: bool = False) -> list[str]:
    """Actions a role may take on a ticket in ``status`` (None role: any role), in workflow order."""
    out = []
    for a in ACTIONS.values():
        if status not in a.sources or (role is not None and role not in a.roles):
            continue
        if a.name in ("approve_extension", "deny_extension") and not extension_pending:
            continue
        if a.name == "request_extension" and extension_pending:
            continue
        out.append(a.name)
    return out


@dataclass
class Outcome:
    """What a transition did: the history to append and the side effects the service must carry out after commit."""

    history: HistoryEntry
    rating: Rating | None = None
    publish_duty: bool = False       # put the ticket on its unit's duty queue
    ack_duty: bool = False           # the unit's queue entry is done (signed / returned)
    suppress: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _parse_deadline(value: Any) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value)
    else:
        raise ValueError(f"deadline must be an ISO-8601 datetime, not {value!r}")
    if dt.tzinfo is None:
        raise ValueError("deadline needs a timezone offset, e.g. 2026-10-08T18:00:00+08:00")
    return dt


def _move_unit(ticket: Ticket, params: dict[str, Any], data: dict[str, Any]) -> None:
    """Hand the ticket to ``params["unit_code"]`` (at ``params["level_index"]`` of the chain), if given."""
    unit = params.get("unit_code")
    if unit:
        data["from_unit"], ticket.unit_code = ticket.unit_code, str(unit)
        if "level_index" in params:
            ticket.escalation_level = int(params["level_index"])


def apply(ticket: Ticket, action: str, actor: str, now: datetime, policy: CasePolicy, *, role: str | None = None,
          note: str = "", attachments: list[Any] | None = None, **params: Any) -> Outcome:
    """Check and perform ``action`` on ``ticket``; raises TransitionError (state or role) or ValueError (parameters)."""
    spec = ACTIONS.get(action)
    status = ticket.status
    pending = ticket.extension_requested is not None
    if spec is None:
        raise TransitionError(status, action, allowed_actions(status, role, pending), "no such action")
    if status not in spec.sources:
        raise TransitionError(status, action, allowed_actions(status, role, pending))
    if role is not None and role not in spec.roles:
        raise TransitionError(status, action, allowed_actions(status, role, pending), f"role {role!r} may not")
    if action in ("approve_extension", "deny_extension") and not pending:
        raise TransitionError(status, action, allowed_actions(status, role, pending), "no extension was requested")
    if action == "request_extension" and pending:
        raise TransitionError(status, action, allowed_actions(status, role, pending), "an extension request is pending")
    if spec.needs_note and not note.strip():
        raise ValueError(f"{action} ({spec.label}) needs a note giving the reason")

    target = spec.target or status
    data: dict[str, Any] = {}
    out = Outcome(history=HistoryEntry())

    if action in ("register", "dispatch"):
        _move_unit(ticket, params, data)
        policy.arm_sign(ticket, now)
        ticket.assignee = None
        out.publish_duty = True
        data["unit_code"] = ticket.unit_code
    elif action == "sign":
        ticket.signed_at = now
        if ticket.sign_deadline is not None and now > ticket.sign_deadline:
            ticket.sign_overdue = True
        ticket.assignee = actor
        policy.arm_handle(ticket, now)
        out.ack_duty = True
    elif action == "feedback":
        ticket.feedback_at = now
        if ticket.handle_deadline is not None and now > ticket.handle_deadline:
            ticket.handle_overdue = True
        policy.disarm(ticket)
    elif action == "rework":
        ticket.rework_count += 1
        ticket.escalate_at = ticket.handle_deadline if ticket.handle_deadline and ticket.handle_deadline > now else now
    elif action in ("close", "auto_close"):
        ticket.closed_at = now
        ticket.closed_level = policy.chain[min(ticket.escalation_level, len(policy.chain) - 1)]
        if ticket.handle_deadline is not None and (ticket.feedback_at or now) > ticket.handle_deadline:
            ticket.handle_overdue = True
        policy.disarm(ticket)
    elif action == "rate":
        score = int(params.get("score", 0))
        if not 1 <= score <= 5:
            raise ValueError("rate needs score between 1 and 5")
        out.rating = Rating(ticket_id=ticket.id, score=score, comment=note, actor=actor, at=now)
        data["score"] = score
    elif action == "request_extension":
        if "deadline" in params:
            wanted = _parse_deadline(params["deadline"])
        elif "hours" in params:
            wanted = (ticket.handle_deadline or now) + timedelta(hours=float(params["hours"]))
        else:
            raise ValueError("request_extension needs deadline (ISO-8601) or hours")
        if ticket.handle_deadline is not None and wanted <= ticket.handle_deadline:
            raise ValueError("the requested deadline must be later than the current one")
        ticket.extension_requested = wanted
        data["requested_deadline"] = wanted.isoformat()
    elif action == "approve_extension":
        new = _parse_deadline(params["deadline"]) if params.get("deadline") else ticket.extension_requested
        data["old_deadline"] = ticket.handle_deadline.isoformat() if ticket.handle_deadline else None
        ticket.handle_deadline = new
        ticket.extension_requested = None
        ticket.extension_count += 1
        ticket.escalate_at = new
        cat = policy.category(ticket.category)
        ticket.remind_at = policy.calendar.fraction_point(now, new, cat.handle_within, policy.cfg.remind_at_fraction) if new > now else None
        data["new_deadline"] = new.isoformat()
    elif action == "deny_extension":
        data["denied_deadline"] = ticket.extension_requested.isoformat()
        ticket.extension_requested = None
    elif action == "return":
        ticket.assignee = None
        ticket.signed_at = None
        policy.disarm(ticket)
        out.ack_duty = True
    elif action == "supervise":
        ticket.supervised = True
    elif action == "escalate":
        _move_unit(ticket, params, data)  # the next level up (the escalator re-arms its clock)
    elif action == "remind":
        ticket.reminders += 1
    elif action in ("void", "false_alarm"):
        ticket.closed_at = now
        policy.disarm(ticket)
        out.ack_duty = True
        if action == "false_alarm" and ticket.source_kind == "camera":
            secs = policy.category(ticket.category).suppress_after_false_alarm_s
            if secs > 0:
                out.suppress = {"source_id": ticket.source_id, "zone": ticket.zone, "kind": ticket.kind,
                                "until": now + timedelta(seconds=float(params.get("suppress_s", secs)))}
                data["suppressed_until"] = out.suppress["until"].isoformat()
    # escalate / clear / comment: the caller has set what changes; history only here.

    data.update({k: v for k, v in params.items() if k in ("reason", "level", "unit_code") and k not in data})
    ticket.status = target
    ticket.updated_at = now
    out.history = HistoryEntry(ticket_id=ticket.id, at=now, actor=actor, action=action, from_status=status,
                               to_status=target, note=note, attachments=list(attachments or []), data=data)
    return out


def create(ticket: Ticket, now: datetime, policy: CasePolicy, *, confirm: bool, unit_name: str, actor: str = "system",
           note: str = "", data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A new ticket's first steps: 接报 (reported), then — unless an operator must confirm it first — the
    automatic 派遣 to the unit it was routed to, with its sign-for clock started. Returns the history rows
    as plain values (a batch inserts them in bulk, before the ticket has an id)."""
    if ticket.status is not None:
        raise TransitionError(ticket.status, "create", [], "the ticket exists already")
    ticket.status = "reported"
    rows = [dict(at=now, actor=actor, action="create", from_status=None, to_status="reported", note=note,
                 attachments=[], data=dict(data or {}))]
    if not confirm:
        ticket.status = "dispatched"
        policy.arm_sign(ticket, now)
        rows.append(dict(at=now, actor="system", action="dispatch", from_status="reported", to_status="dispatched",
                         note=f"自动派遣至 {unit_name}", attachments=[], data={"unit_code": ticket.unit_code}))
    ticket.updated_at = now
    return rows


MERGE_ROLES = frozenset({"dispatcher", "admin", "system"})


def check_merge_role(action: str, role: str | None, state: str = "?") -> None:
    """Merging and unmerging are the dispatcher's (and admin's, and the system's) to do."""
    if role is not None and role not in MERGE_ROLES:
        raise TransitionError(state, action, [], f"role {role!r} may not")


@dataclass
class MergeOutcome:
    """The history rows of both tickets, and whether the ticket that got its own state back goes on a duty queue."""

    history: list[HistoryEntry]
    publish_duty: bool = False


def merge(src: Ticket, dst: Ticket, actor: str, now: datetime, policy: CasePolicy, *, role: str | None = None,
          note: str = "", moved: list[int] | None = None) -> MergeOutcome:
    """``src`` becomes part of ``dst`` (duplicates of one event): src → merged, its clock stopped, reversible."""
    check_merge_role("merge", role)
    if src.id == dst.id:
        raise ValueError("a ticket cannot be merged into itself")
    for t in (src, dst):
        if t.status not in OPEN:
            raise TransitionError(t.status, "merge", allowed_actions(t.status, role), f"ticket {t.number} is not open")
    before = src.status
    src.status_before_merge, src.status, src.merged_into = before, "merged", dst.id
    src.updated_at = dst.updated_at = now
    policy.disarm(src)
    return MergeOutcome([
        HistoryEntry(ticket_id=src.id, at=now, actor=actor, action="merge", from_status=before, to_status="merged",
                     note=note, attachments=[], data={"into": dst.id, "into_number": dst.number}),
        HistoryEntry(ticket_id=dst.id, at=now, actor=actor, action="merge_in", from_status=dst.status,
                     to_status=dst.status, note=note, attachments=[],
                     data={"from": src.id, "from_number": src.number, "occurrences": list(moved or [])})])


def unmerge(src: Ticket, dst: Ticket | None, actor: str, now: datetime, policy: CasePolicy, *, role: str | None = None,
            note: str = "", back: list[int] | None = None) -> MergeOutcome:
    """Reverse a merge: ``src`` gets its own state back (and, if that is dispatched, a fresh sign-for clock)."""
    check_merge_role("unmerge", role, "merged")
    if src.status != "merged" or src.merged_into is None or dst is None:
        raise TransitionError(src.status, "unmerge", allowed_actions(src.status, role), "it is not merged")
    src.status, src.merged_into = src.status_before_merge or "registered", None
    src.status_before_merge = None
    src.updated_at = dst.updated_at = now
    duty = False
    if src.status in UNSIGNED:
        if src.status == "dispatched":
            policy.arm_sign(src, now)
            duty = True
    else:
        src.escalate_at = src.handle_deadline
    occurrences = list(back or [])
    return MergeOutcome([
        HistoryEntry(ticket_id=src.id, at=now, actor=actor, action="unmerge", from_status="merged", to_status=src.status,
                     note=note, attachments=[], data={"from": dst.id, "occurrences": occurrences}),
        HistoryEntry(ticket_id=dst.id, at=now, actor=actor, action="unmerge_out", from_status=dst.status,
                     to_status=dst.status, note=note, attachments=[], data={"to": src.id, "occurrences": occurrences})],
        publish_duty=duty)
