"""A read-only Open311 GeoReport v2 view of the cases, as plain dicts the gateway serves as JSON.

GeoReport v2 (https://wiki.open311.org/GeoReport_v2/) is how city systems and apps (FixMyStreet
and others) list service types and read service requests. Categories map to services; tickets
to requests: ``service_request_id`` is the case number, ``status`` is ``open``/``closed``.
Only what GeoReport defines is exposed; no personal data, no evidence paths.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.config import AlertsConfig
from alerts.lifecycle import STATUS_LABELS
from alerts.service import CaseService


def services(cfg: AlertsConfig) -> list[dict[str, Any]]:
    """GET services.json."""
    out = []
    for c in cfg.categories:
        group, _, name = c.name.partition("-")
        out.append({"service_code": c.code, "service_name": name or c.name, "description": c.name,
                    "metadata": False, "type": "realtime", "keywords": ",".join(c.anomaly_kinds), "group": group})
    return out


def _request(t: dict[str, Any], cfg: AlertsConfig) -> dict[str, Any]:
    names = {c.code: c.name for c in cfg.categories}
    closed = t["status"] in ("closed", "rated", "void", "false_alarm")
    return {
        "service_request_id": t["number"], "status": "closed" if closed else "open",
        "status_notes": STATUS_LABELS.get(t["status"], t["status"]),
        "service_name": names.get(t["category"], t["category"]), "service_code": t["category"],
        "description": t["title"], "agency_responsible": t["unit_code"], "service_notice": "",
        "requested_datetime": t["created_at"], "updated_datetime": t["updated_at"],
        "expected_datetime": t["handle_deadline"], "address": t.get("address") or "", "address_id": "",
        "zipcode": "", "lat": t["location"]["lat"], "long": t["location"]["lon"], "media_url": "",
    }


def requests(service: CaseService, *, service_code: str | None = None, status: str | None = None,
             start_date: datetime | None = None, end_date: datetime | None = None, limit: int = 50,
             grids: list[str] | None = None) -> list[dict[str, Any]]:
    """GET requests.json: newest first; ``status`` open|closed as GeoReport defines it."""
    if status not in (None, "open", "closed"):
        raise ValueError("status must be open or closed")
    statuses = None
    if status == "open":
        statuses = ["reported", "registered", "dispatched", "signed", "handling", "feedback", "verified"]
    elif status == "closed":
        statuses = ["closed", "rated", "void", "false_alarm"]
    page = service.list_tickets(grids=grids, status=statuses, category=service_code, since=start_date, until=end_date,
                                limit=min(limit, 500))
    return [_request(t, service.cfg) for t in page.items]


def request(service: CaseService, request_id: str, grids: list[str] | None = None) -> list[dict[str, Any]]:
    """GET requests/{id}.json: a one-element list, as the spec has it."""
    return [_request(service.get_ticket(request_id, grids=grids), service.cfg)]
