"""Case KPIs for supervisors: 按期签收率, 按期结案率, 返工率, 延期率, time to sign / close, 满意率.

Definitions (so the numbers can be argued with):
- cases: tickets created in the period, not merged into another, not void or false alarm;
- 按期签收率 = signed on time / (signed + not signed but already past the sign deadline);
- 按期结案率 = closed on time / (closed + open but already past the handle deadline);
- 返工率 = cases sent back at least once / cases that reached feedback;
- 延期率 = cases with an approved extension / cases;
- time to sign / close: from creation, in minutes (mean, p50, p90; nearest-rank percentiles);
- 满意率 = ratings of 4 or 5 / ratings.
Grouped by grid, department, level (the level that closed it, or holds it now), category or period.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import or_, select

from alerts.config import AlertsConfig
from alerts.models import Rating, Ticket
from alerts.store import Store

EXCLUDED = ("merged", "void", "false_alarm")
GROUPS = ("grid", "department", "level", "category", "month", "day", "unit")


def _pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile: always one of the observed durations, as KPI tables report them."""
    if not values:
        return None
    return float(np.percentile(values, 100 * q, method="inverted_cdf"))


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "mean": None, "p50": None, "p90": None}
    return {"n": len(values), "mean": round(sum(values) / len(values), 2), "p50": round(_pct(values, 0.5), 2),
            "p90": round(_pct(values, 0.9), 2)}


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _metrics(rows: list[Any], ratings: dict[int, list[int]], now: datetime) -> dict[str, Any]:
    signed = [r for r in rows if r.signed_at is not None]
    sign_due = [r for r in rows if r.signed_at is not None or r.sign_overdue
                or (r.sign_deadline is not None and r.sign_deadline < now and r.closed_at is None)]
    sign_ok = [r for r in signed if not r.sign_overdue and (r.sign_deadline is None or r.signed_at <= r.sign_deadline)]
    closed = [r for r in rows if r.status in ("closed", "rated") and r.closed_at is not None]
    close_due = closed + [r for r in rows if r.closed_at is None and (r.handle_overdue or (
        r.handle_deadline is not None and r.handle_deadline < now))]
    close_ok = [r for r in closed if not r.handle_overdue]
    fed = [r for r in rows if r.feedback_at is not None]
    scores = [s for r in rows for s in ratings.get(r.id, [])]
    return {
        "cases": len(rows),
        "open": sum(1 for r in rows if r.closed_at is None),
        "closed": len(closed),
        "sign_on_time_rate": _rate(len(sign_ok), len(sign_due)),
        "close_on_time_rate": _rate(len(close_ok), len(close_due)),
        "rework_rate": _rate(sum(1 for r in fed if r.rework_count > 0), len(fed)),
        "extension_rate": _rate(sum(1 for r in rows if r.extension_count > 0), len(rows)),
        "escalated": sum(1 for r in rows if r.escalation_level > 0 and r.routed_by == "base_grid"),
        "time_to_sign_min": _stats([(r.signed_at - r.created_at).total_seconds() / 60 for r in signed]),
        "time_to_close_min": _stats([(r.closed_at - r.created_at).total_seconds() / 60 for r in closed]),
        "ratings": len(scores),
        "satisfaction_rate": _rate(sum(1 for s in scores if s >= 4), len(scores)),
    }


def compute(store: Store, cfg: AlertsConfig, *, since: datetime | None = None, until: datetime | None = None,
            grids: Iterable[str] | None = None, group_by: str | None = "grid", now: datetime | None = None) -> dict[str, Any]:
    """KPIs over tickets created in [since, until), visible within ``grids``; ``group_by`` one of GROUPS or None."""
    if group_by is not None and group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}")
    now = now or datetime.now(timezone.utc)
    tz = ZoneInfo(cfg.timezone)
    chain = list(cfg.escalation_chain)
    q = select(Ticket).where(Ticket.status.not_in(EXCLUDED))
    if since is not None:
        q = q.where(Ticket.created_at >= since)
    if until is not None:
        q = q.where(Ticket.created_at < until)
    if grids is not None:
        q = q.where(or_(*[Ticket.grid_code.startswith(c) for c in grids]))
    with store.read() as s:
        rows = s.scalars(q).all()
        ids = [r.id for r in rows]
        ratings: dict[int, list[int]] = defaultdict(list)
        for i in range(0, len(ids), 500):
            for tid, score in s.execute(select(Rating.ticket_id, Rating.score).where(Rating.ticket_id.in_(ids[i:i + 500]))):
                ratings[tid].append(score)
    key: Callable[[Ticket], str] = {
        "grid": lambda r: r.grid_code,
        "unit": lambda r: r.unit_code,
        "department": lambda r: r.department or "-",
        "level": lambda r: r.closed_level or chain[min(r.escalation_level, len(chain) - 1)],
        "category": lambda r: r.category,
        "month": lambda r: r.created_at.astimezone(tz).strftime("%Y-%m"),
        "day": lambda r: r.created_at.astimezone(tz).strftime("%Y-%m-%d"),
        None: lambda r: "all",
    }[group_by]
    groups: dict[str, list[Ticket]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return {
        "since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
        "group_by": group_by, "overall": _metrics(rows, ratings, now),
        "groups": {k: _metrics(v, ratings, now) for k, v in sorted(groups.items())},
    }


def month_bounds(month: str, tz: str = "Asia/Shanghai") -> tuple[datetime, datetime]:
    """``2026-10`` → [first instant, first instant of next month) in UTC, the month taken in local time."""
    try:
        y, m = (int(x) for x in month.split("-"))
        start = datetime(y, m, 1, tzinfo=ZoneInfo(tz))
    except (ValueError, TypeError):
        raise ValueError(f"month must be YYYY-MM, not {month!r}") from None
    end = datetime(y + (m == 12), 1 if m == 12 else m + 1, 1, tzinfo=ZoneInfo(tz))
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def _fmt_rate(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _fmt_min(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def monthly_report(store: Store, month: str, cfg: AlertsConfig | None = None, group_by: str = "grid") -> str:
    """A plain-text table of one month's KPIs per grid (for ``gridwatch report --month YYYY-MM``)."""
    cfg = cfg or AlertsConfig()
    since, until = month_bounds(month, cfg.timezone)
    data = compute(store, cfg, since=since, until=until, group_by=group_by, now=min(until, datetime.now(timezone.utc)))
    header = ["group", "cases", "closed", "按期签收率", "按期结案率", "返工率", "延期率",
              "签收p50(min)", "签收p90", "结案p50(min)", "结案p90", "满意率"]
    lines = []
    for name, m in list(data["groups"].items()) + [("TOTAL", data["overall"])]:
        lines.append([name, str(m["cases"]), str(m["closed"]), _fmt_rate(m["sign_on_time_rate"]),
                      _fmt_rate(m["close_on_time_rate"]), _fmt_rate(m["rework_rate"]), _fmt_rate(m["extension_rate"]),
                      _fmt_min(m["time_to_sign_min"]["p50"]), _fmt_min(m["time_to_sign_min"]["p90"]),
                      _fmt_min(m["time_to_close_min"]["p50"]), _fmt_min(m["time_to_close_min"]["p90"]),
                      _fmt_rate(m["satisfaction_rate"])])

    def width(text: str) -> int:  # CJK characters take two columns in a terminal
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)

    widths = [max(width(row[i]) for row in [header] + lines) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(cell + " " * (w - width(cell)) if i == 0 else " " * (w - width(cell)) + cell
                         for i, (cell, w) in enumerate(zip(row, widths)))

    title = f"GridWatch case report {month} (by {group_by}, {cfg.timezone})"
    rule = "-" * len(fmt(header))
    return "\n".join([title, rule, fmt(header), rule, *[fmt(r) for r in lines[:-1]], rule, fmt(lines[-1])]) + "\n"
