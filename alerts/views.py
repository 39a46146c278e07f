"""JSON-ready views of tickets for the gateway, the events stream and notifications.

The ORM rows never leave ``alerts``: everything the gateway shows is one of these plain dicts,
with times as ISO-8601 UTC strings and state labels in Chinese next to the codes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from alerts.lifecycle import STATUS_LABELS
from alerts.models import HistoryEntry, Occurrence, Rating, Ticket


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


@dataclass(frozen=True)
class TicketRef:
    """What intake answers for one anomaly: the case it landed in, and how."""

    ticket_id: int | None
    number: str | None
    status: str | None = None
    grid_code: str | None = None
    unit_code: str | None = None
    created: bool = False
    merged: bool = False
    duplicate: bool = False
    suppressed: bool = False
    cleared: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ticket_summary(t: Ticket) -> dict[str, Any]:
    return {
        "id": t.id, "number": t.number, "category": t.category, "severity": t.severity,
        "status": t.status, "status_label": STATUS_LABELS.get(t.status, t.status), "title": t.title,
        "grid_code": t.grid_code, "grid_version": t.grid_version, "routed_by": t.routed_by, "unit_code": t.unit_code,
        "escalation_level": t.escalation_level, "department": t.department, "police": t.police,
        "location": {"lon": t.lon, "lat": t.lat, "crs": t.crs}, "address": t.address,
        "source": {"kind": t.source_kind, "id": t.source_id, "zone": t.zone}, "kind": t.kind,
        "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
        "first_seen_at": iso(t.first_seen_at), "last_seen_at": iso(t.last_seen_at), "occurrence_count": t.occurrence_count,
        "sign_deadline": iso(t.sign_deadline), "handle_deadline": iso(t.handle_deadline),
        "signed_at": iso(t.signed_at), "closed_at": iso(t.closed_at), "cleared_at": iso(t.cleared_at),
        "sign_overdue": t.sign_overdue, "handle_overdue": t.handle_overdue, "supervised": t.supervised,
        "reminders": t.reminders, "rework_count": t.rework_count, "extension_count": t.extension_count,
        "extension_requested": iso(t.extension_requested), "assignee": t.assignee, "merged_into": t.merged_into,
    }


def occurrence_view(o: Occurrence) -> dict[str, Any]:
    return {
        "id": o.id, "anomaly_id": o.anomaly_id, "ticket_id": o.ticket_id, "original_ticket_id": o.original_ticket_id,
        "kind": o.kind, "state": o.state, "source": {"kind": o.source_kind, "id": o.source_id, "zone": o.zone},
        "location": {"lon": o.lon, "lat": o.lat, "crs": "WGS84"}, "score": o.score, "title": o.title,
        "evidence": o.evidence, "details": o.details, "observed_at": iso(o.observed_at),
        "occurred_at": iso(o.occurred_at), "received_at": iso(o.received_at), "merged": o.merged,
    }


def history_view(h: HistoryEntry) -> dict[str, Any]:
    return {"id": h.id, "at": iso(h.at), "actor": h.actor, "action": h.action, "from": h.from_status, "to": h.to_status,
            "note": h.note, "attachments": h.attachments, "data": h.data}


def rating_view(r: Rating) -> dict[str, Any]:
    return {"id": r.id, "score": r.score, "satisfied": r.score >= 4, "comment": r.comment, "actor": r.actor, "at": iso(r.at)}


def ticket_detail(t: Ticket) -> dict[str, Any]:
    out = ticket_summary(t)
    out["description"] = t.description
    out["occurrences"] = [occurrence_view(o) for o in t.occurrences]
    out["history"] = [history_view(h) for h in t.history]
    out["ratings"] = [rating_view(r) for r in t.ratings]
    out["evidence"] = [e for o in t.occurrences for e in (o.evidence or [])]
    return out
