"""满意率 from the 回访 surveys, per grid, unit, department or category — for the KPI code and supervisors.

Every reporter of a case answers for themselves (a case merged from a hotline call and two residents
has three answers), which is why this counts surveys and not the one ``rate`` transition a ticket gets.
A score of 4 or 5 is satisfied, as in ``alerts.kpis``.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import or_, select

from alerts.channels.models import Survey
from alerts.store import Store

GROUPS = ("grid", "unit", "department", "category")


def satisfaction(store: Store, *, group_by: str = "grid", since: datetime | None = None, until: datetime | None = None,
                 grids: Iterable[str] | None = None) -> dict[str, Any]:
    """{"total": {...}, "groups": {key: {"surveys", "answered", "satisfied", "satisfaction_rate", "resolved_rate", "mean_score"}}}.

    Surveys sent in [since, until); ``grids``: grid codes (any level) to include; None = all.
    """
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}")
    q = select(Survey)
    if since is not None:
        q = q.where(Survey.sent_at >= since)
    if until is not None:
        q = q.where(Survey.sent_at < until)
    if grids is not None:
        codes = [c for c in grids if c]
        if not codes:
            return {"group_by": group_by, "total": _metrics([]), "groups": {}}
        q = q.where(or_(*[Survey.grid_code.startswith(c) for c in codes]))
    with store.read() as s:
        rows = list(s.scalars(q))
    key = {"grid": lambda r: r.grid_code, "unit": lambda r: r.unit_code or r.grid_code,
           "department": lambda r: r.department or "(none)", "category": lambda r: r.category or "(none)"}[group_by]
    groups: dict[str, list[Survey]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return {"group_by": group_by, "total": _metrics(rows), "groups": {k: _metrics(v) for k, v in sorted(groups.items())}}


def _metrics(rows: list[Survey]) -> dict[str, Any]:
    answered = [r for r in rows if r.answered_at is not None and r.score is not None]
    sat = sum(1 for r in answered if r.score >= 4)
    res = [r for r in answered if r.resolved is not None]
    return {"surveys": len(rows), "answered": len(answered), "satisfied": sat,
            "satisfaction_rate": round(sat / len(answered), 4) if answered else None,
            "response_rate": round(len(answered) / len(rows), 4) if rows else None,
            "resolved_rate": round(sum(1 for r in res if r.resolved) / len(res), 4) if res else None,
            "mean_score": round(sum(r.score for r in answered) / len(answered), 2) if answered else None}
