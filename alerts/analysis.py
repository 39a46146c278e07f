"""Figures over the case store for the big screen and for 研判 (analysis and early warning).

Everything here reads tickets through one small query (``_rows``), cut to the caller's grids like every other
read, and computes in Python: the windows are days and weeks of one district, thousands of rows, not millions.

* ``dashboard``: open cases by status and category, today's new and closed, today's hourly trend, top grids.
* ``hotspots``: grids and places (cases within 100 m of each other) with repeated cases in a window.
* ``week_over_week``: per category and per grid, the last 7 days against the 7 before.
* ``repeat_addresses``: the same address reported again and again.
* ``early_warnings``: a grid whose count of a category exceeds its own baseline (the mean of the previous
  windows) by a margin. ``file_early_warnings`` files each as a 督办 (supervision) case through the intake and
  the case service, so it is routed, timed and escalated like any case, and filing it twice is a no-op.
"""
from __future__ import annotations

import logging
import math
import threading
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from alerts.lifecycle import OPEN
from alerts.models import Ticket
from alerts.service import _visible_clause

log = logging.getLogger(__name__)

PLACE_RADIUS_M = 100.0
WARNING_NAMESPACE = uuid.UUID("5b0f3c4e-8f1c-4d0e-9a57-9d1f2f6c0a18")


@dataclass(frozen=True)
class Row:
    id: int
    status: str
    category: str
    grid_code: str
    created_at: datetime
    closed_at: datetime | None
    lon: float
    lat: float
    address: str | None
    kind: str


def _rows(store: Any, grids: Iterable[str] | None, since: datetime | None = None, *, open_too: bool = False) -> list[Row]:
    """Tickets created since ``since`` (and, with open_too, every open one), merged duplicates left out."""
    q = select(Ticket.id, Ticket.status, Ticket.category, Ticket.grid_code, Ticket.created_at, Ticket.closed_at,
               Ticket.lon, Ticket.lat, Ticket.address, Ticket.kind).where(Ticket.status != "merged")
    if grids is not None:
        grids = list(grids)
        if not grids:
            return []
        q = q.where(_visible_clause(grids))
    if since is not None:
        cond = [Ticket.created_at >= since]
        if open_too:
            cond += [Ticket.status.in_(OPEN), Ticket.closed_at >= since]
        q = q.where(or_(*cond))
    with store.read() as s:
        return [Row(*r) for r in s.execute(q).all()]


def _local_midnight(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def dashboard(store: Any, grids: Iterable[str] | None, *, now: datetime, tz: str, names: dict[str, str],
              categories: dict[str, str], top: int = 8) -> dict[str, Any]:
    """The big screen's figures: counts by status and category, today's trend per hour (local time), top grids."""
    today = _local_midnight(now, tz)
    rows = _rows(store, grids, today, open_too=True)
    open_rows = [r for r in rows if r.status in OPEN]
    new_today = [r for r in rows if r.created_at >= today]
    hours = Counter(int((r.created_at - today).total_seconds() // 3600) for r in new_today)
    now_hour = int((now - today).total_seconds() // 3600)
    by_grid = Counter(r.grid_code for r in open_rows)
    return {
        "at": now.isoformat(),
        "open": len(open_rows),
        "new_today": len(new_today),
        "closed_today": sum(1 for r in rows if r.closed_at is not None and r.closed_at >= today),
        "by_status": [{"status": k, "count": v} for k, v in Counter(r.status for r in open_rows).most_common()],
        "by_category": [{"code": k, "name": categories.get(k, k), "count": v}   # open or new today, each case once
                        for k, v in Counter(r.category for r in {r.id: r for r in new_today + open_rows}.values()).most_common()],
        "trend": [{"hour": h, "count": hours.get(h, 0)} for h in range(0, min(24, now_hour + 1))],
        "top_grids": [{"code": k, "name": names.get(k, k), "count": v} for k, v in by_grid.most_common(top)],
        "dots": [{"id": r.id, "lon": r.lon, "lat": r.lat, "status": r.status} for r in open_rows],
    }


def _distance_m(a: Row, lon: float, lat: float) -> float:
    dx = (a.lon - lon) * 111_320.0 * math.cos(math.radians(lat))
    return math.hypot(dx, (a.lat - lat) * 111_320.0)


def _places(rows: list[Row]) -> list[list[Row]]:
    """Cases grouped into places: each joins the first place whose first case is within PLACE_RADIUS_M (else starts one).

    Greedy and order-stable (oldest first), so a place does not split at an arbitrary cell border."""
    groups: list[list[Row]] = []
    for r in sorted(rows, key=lambda r: (r.created_at, r.id)):
        for g in groups:
            if _distance_m(r, g[0].lon, g[0].lat) <= PLACE_RADIUS_M:
                g.append(r)
                break
        else:
            groups.append([r])
    return groups


def hotspots(store: Any, grids: Iterable[str] | None, *, since: datetime, min_count: int = 3,
             names: dict[str, str] | None = None) -> dict[str, Any]:
    """Grids and places (~100 m) with at least ``min_count`` cases since ``since``; plus heat points for the map."""
    rows = _rows(store, grids, since)
    names = names or {}
    by_grid = Counter(r.grid_code for r in rows)
    places = []
    for members in _places(rows):
        if len(members) < min_count:
            continue
        cats = Counter(m.category for m in members)
        places.append({"lon": sum(m.lon for m in members) / len(members), "lat": sum(m.lat for m in members) / len(members),
                       "count": len(members), "grid_code": Counter(m.grid_code for m in members).most_common(1)[0][0],
                       "top_category": cats.most_common(1)[0][0],
                       "address": Counter(m.address for m in members if m.address).most_common(1)[0][0] if any(m.address for m in members) else None})
    places.sort(key=lambda p: -p["count"])
    return {
        "since": since.isoformat(),
        "grids": [{"code": k, "name": names.get(k, k), "count": v} for k, v in by_grid.most_common() if v >= min_count],
        "places": places,
        "heat": [[r.lat, r.lon, 1.0] for r in rows],
    }


def week_over_week(store: Any, grids: Iterable[str] | None, *, now: datetime) -> dict[str, Any]:
    """Counts of the last 7 days against the 7 before, per category and per grid, with the change."""
    start_this, start_last = now - timedelta(days=7), now - timedelta(days=14)
    rows = [r for r in _rows(store, grids, start_last) if r.created_at < now]

    def table(key: str) -> list[dict[str, Any]]:
        this = Counter(getattr(r, key) for r in rows if r.created_at >= start_this)
        last = Counter(getattr(r, key) for r in rows if r.created_at < start_this)
        out = []
        for k in sorted(set(this) | set(last)):
            a, b = this.get(k, 0), last.get(k, 0)
            out.append({"key": k, "this_week": a, "last_week": b, "change": a - b,
                        "change_rate": None if b == 0 else (a - b) / b})
        return sorted(out, key=lambda x: (-x["this_week"], x["key"]))

    return {"until": now.isoformat(), "by_category": table("category"), "by_grid": table("grid_code")}


def _norm_address(text: str) -> str:
    return "".join(text.split()).lower()


def repeat_addresses(store: Any, grids: Iterable[str] | None, *, since: datetime, min_count: int = 2) -> list[dict[str, Any]]:
    """Addresses with ``min_count`` or more cases since ``since`` (spaces and case ignored), most first."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in _rows(store, grids, since):
        if r.address and r.address.strip():
            groups[_norm_address(r.address)].append(r)
    out = []
    for members in groups.values():
        if len(members) >= min_count:
            members.sort(key=lambda m: m.created_at)
            out.append({"address": members[-1].address, "count": len(members), "grid_code": members[-1].grid_code,
                        "categories": sorted({m.category for m in members}), "ticket_ids": [m.id for m in members],
                        "first": members[0].created_at.isoformat(), "last": members[-1].created_at.isoformat()})
    return sorted(out, key=lambda x: (-x["count"], x["address"]))


@dataclass(frozen=True)
class EarlyWarning:
    """A grid whose count of a category in the window exceeds its own baseline by the margin."""

    grid_code: str
    category: str
    count: int
    baseline: float
    threshold: float
    window_start: datetime
    window_end: datetime

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window_start"], d["window_end"] = self.window_start.isoformat(), self.window_end.isoformat()
        return d

    @property
    def anomaly_id(self) -> str:
        """Deterministic per grid, category and window day: filing the same warning again is an intake no-op."""
        day = self.window_end.date().isoformat()
        return str(uuid.uuid5(WARNING_NAMESPACE, f"{self.grid_code}|{self.category}|{day}"))


def early_warnings(store: Any, grids: Iterable[str] | None, *, now: datetime, window_days: int, baseline_windows: int,
                   margin: float, min_count: int, categories: Iterable[str] | None = None) -> list[EarlyWarning]:
    """Per (grid, category): count in the last window vs the mean of the ``baseline_windows`` windows before it.

    A warning needs ``count >= min_count`` and ``count > baseline × (1 + margin)``; a grid with no history has a
    baseline of 0, so its threshold is ``min_count``. Early-warning cases themselves are not counted."""
    window = timedelta(days=window_days)
    start = now - window
    oldest = start - window * baseline_windows
    wanted = set(categories) if categories else None
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (baseline_windows + 1))
    for r in _rows(store, grids, oldest):
        if r.kind == "early_warning" or r.created_at >= now or (wanted and r.category not in wanted):
            continue
        idx = 0 if r.created_at >= start else 1 + int((start - r.created_at) / window)
        if idx <= baseline_windows:
            counts[(r.grid_code, r.category)][idx] += 1
    out = []
    for (grid, cat), series in sorted(counts.items()):
        current, history = series[0], series[1:]
        baseline = sum(history) / len(history) if history else 0.0
        threshold = max(float(min_count), baseline * (1 + margin))
        if current >= min_count and current > baseline * (1 + margin):
            out.append(EarlyWarning(grid, cat, current, baseline, threshold, start, now))
    return out


def file_early_warnings(intake: Any, cases: Any, grid_index: Any, warnings: list[EarlyWarning],
                        category_names: dict[str, str]) -> list[dict[str, Any]]:
    """File each warning as a case at its grid and mark it 督办 (supervise) for the leader above, through the services.

    Returns ``[{warning, ticket_id, number, new}]``. A warning already filed (same grid, category, day) is
    found again by its anomaly id and not filed or supervised twice."""
    from ingest.anomaly import Anomaly
    from ingest.geo import GeoPoint

    out = []
    for w in warnings:
        grid = grid_index.get(w.grid_code)
        if grid is None:
            continue
        spot = grid.geometry.representative_point()
        name = category_names.get(w.category, w.category)
        anomaly = Anomaly(
            id=w.anomaly_id, kind="early_warning", source="report", source_id=f"early-warning:{w.grid_code}:{w.category}",
            location=GeoPoint(lon=spot.x, lat=spot.y), category=w.category, score=float(w.count),
            title=f"预警督办：{grid.name} {name} {w.count} 起（基线 {w.baseline:.1f}）",
            details={"early_warning": w.to_dict()})
        ref = intake.file(anomaly)
        new = ref.created
        ticket = cases.get_ticket(ref.ticket_id)
        if not ref.duplicate and not ticket.get("supervised"):
            cases.transition(ref.ticket_id, "supervise", "early-warning",
                             f"同比基线超出 {int(round((w.count / w.baseline - 1) * 100)) if w.baseline else 100}%：请网格长督办",
                             role="system")
            ticket = cases.get_ticket(ref.ticket_id)
        out.append({"warning": w.to_dict(), "ticket_id": ref.ticket_id, "number": ticket["number"], "new": new,
                    "supervised": ticket.get("supervised", False), "grid_code": ticket["grid_code"], "unit_code": ticket["unit_code"]})
    return out


class EarlyWarningScan:
    """The early-warning rule on a clock: the SLA role files what :func:`early_warnings` finds over every grid.

    Filing is idempotent per grid, category and day (the anomaly id), so a second SLA process, a restart or
    the 研判 page's button running the rule the same day never files a warning twice."""

    def __init__(self, cases: Any, intake: Any, grid_index: Any, cfg: Any):
        self.cases, self.intake, self.grid_index, self.cfg = cases, intake, grid_index, cfg

    def run_once(self, now: datetime | None = None) -> list[dict[str, Any]]:
        cfg = self.cfg
        warnings = early_warnings(self.cases.store, None, now=now or datetime.now(timezone.utc), window_days=cfg.window_days,
                                  baseline_windows=cfg.baseline_windows, margin=cfg.margin, min_count=cfg.min_count,
                                  categories=cfg.categories or None)
        names = {code: c.name for code, c in self.cases.policy.by_code.items()}
        return file_early_warnings(self.intake, self.cases, self.grid_index, warnings, names)

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.wait(self.cfg.scan_interval_s):
            try:
                filed = [f for f in self.run_once() if f["new"]]
                if filed:
                    log.info("early warning: %d supervised case(s) filed: %s", len(filed), ", ".join(f["number"] for f in filed))
            except Exception:  # the next scan tries again; nothing is lost by waiting
                log.exception("early-warning scan failed; retrying at the next interval")
