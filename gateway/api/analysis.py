"""The big screen's figures and 研判 (hotspots, week-over-week, repeat addresses, early warning), cut to the
caller's grids. The arithmetic is ``alerts.analysis``; this module maps callers to scopes and options to HTTP."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from alerts import analysis
from gateway.api.deps import errors, require, runtime
from gateway.api.tickets import scope_codes
from gateway.auth import Principal
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["analysis"])


def _names(rt: ApiRuntime) -> dict[str, str]:
    return {g.code: g.name for g in rt.grids.all()}


def _categories(rt: ApiRuntime) -> dict[str, str]:
    return {code: c.name for code, c in rt.cases.policy.by_code.items()}


@router.get("/dashboard", responses=errors(401, 403), summary="Big-screen figures: open by status/category, today's trend, top grids")
def dashboard(principal: Principal = Depends(require("tickets:read")), rt: ApiRuntime = Depends(runtime)) -> dict[str, Any]:
    return analysis.dashboard(rt.cases.store, scope_codes(principal), now=datetime.now(timezone.utc), tz=rt.deployment.timezone,
                              names=_names(rt), categories=_categories(rt))


class AnalysisOut(BaseModel):
    since: datetime
    hotspots: dict[str, Any] = Field(description="grids and ~100 m places with repeated cases; heat points [lat, lon, w]")
    week_over_week: dict[str, Any]
    repeat_addresses: list[dict[str, Any]]
    early_warnings: list[dict[str, Any]] = Field(description="what the rule would file now (nothing is filed by GET)")
    categories: dict[str, str] = Field(description="category code → name, for the codes above")


@router.get("/analysis", response_model=AnalysisOut, responses=errors(401, 403, 422), summary="研判: hotspots, trends, repeats, warnings")
def overview(days: int = Query(30, ge=1, le=365, description="window of hotspots and repeat addresses"),
             min_count: int = Query(3, ge=1, le=1000, description="fewest cases that make a hotspot"),
             principal: Principal = Depends(require("kpis")), rt: ApiRuntime = Depends(runtime)) -> AnalysisOut:
    now = datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    codes = scope_codes(principal)
    cfg = rt.deployment.alerts.early_warning
    warnings = analysis.early_warnings(rt.cases.store, codes, now=now, window_days=cfg.window_days,
                                       baseline_windows=cfg.baseline_windows, margin=cfg.margin, min_count=cfg.min_count,
                                       categories=cfg.categories or None)
    return AnalysisOut(
        since=since,
        hotspots=analysis.hotspots(rt.cases.store, codes, since=since, min_count=min_count, names=_names(rt)),
        week_over_week=analysis.week_over_week(rt.cases.store, codes, now=now),
        repeat_addresses=analysis.repeat_addresses(rt.cases.store, codes, since=since, min_count=2),
        early_warnings=[w.to_dict() for w in warnings], categories=_categories(rt))


class WarningRunOut(BaseModel):
    filed: list[dict[str, Any]] = Field(description="one per warning: the 督办 case it is filed under; new=false when already filed")


@router.post("/analysis/early-warning", response_model=WarningRunOut, responses=errors(401, 403),
             summary="Run the early-warning rule now: each warning becomes a supervised (督办) case")
def run_early_warning(request: Request, principal: Principal = Depends(require("kpis")), rt: ApiRuntime = Depends(runtime)) -> WarningRunOut:
    cfg = rt.deployment.alerts.early_warning
    warnings = analysis.early_warnings(rt.cases.store, scope_codes(principal), now=datetime.now(timezone.utc),
                                       window_days=cfg.window_days, baseline_windows=cfg.baseline_windows, margin=cfg.margin,
                                       min_count=cfg.min_count, categories=cfg.categories or None)
    filed = analysis.file_early_warnings(rt.intake, rt.cases, rt.grids, warnings, _categories(rt))
    request.app.state.audit.record(principal.username, "analysis.early_warning", f"warnings:{len(filed)}",
                                   tickets=[f["number"] for f in filed])
    return WarningRunOut(filed=filed)
