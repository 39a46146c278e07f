"""研判 and the big screen's figures on a real runtime: a seeded history of cases (created_at moved back in the
SQL store), the early-warning rule filing one supervised 督办 case through the services, scoped to the caller."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import update

from alerts.models import Ticket
from ingest.anomaly import Anomaly
from gw_support import CROSSING, PLAZA
from ingest.geo import GeoPoint

pytestmark = pytest.mark.timeout(90)

PLAZA_GRID, CROSSING_GRID = "330199001001001", "330199002002004"


def _file(rt: Any, where: GeoPoint, kind: str, days_ago: float, address: str | None = None) -> int:
    """A real case through the intake, then dated back: what the store would hold after weeks of running."""
    ref = rt.intake.file(Anomaly(kind=kind, source="report", source_id=f"patrol-{days_ago}-{where.lon}-{kind}-{address}",
                                 location=where, title=f"seed {kind}", details={"address": address} if address else {}))
    at = datetime.now(timezone.utc) - timedelta(days=days_ago)
    values = {"created_at": at, "first_seen_at": at, "last_seen_at": at}
    if address:
        values["address"] = address
    with rt.cases.store.write() as s:
        s.execute(update(Ticket).where(Ticket.id == ref.ticket_id).values(**values))
    return ref.ticket_id


def seed_surge(rt: Any) -> None:
    """Parking cases: 2 a week for four weeks in both grids, then 6 this week in the plaza grid only."""
    for week in range(1, 5):
        for i in range(2):
            _file(rt, PLAZA, "illegal_parking", week * 7 + 1 + i)
            _file(rt, CROSSING, "illegal_parking", week * 7 + 1 + i)
    for i in range(6):
        _file(rt, GeoPoint(lon=120.1051 + i * 0.00005, lat=30.2761), "illegal_parking", 0.5 + i * 0.5, address="文一路 3 号 北门")
    for i in range(2):
        _file(rt, CROSSING, "illegal_parking", 1 + i)


def test_early_warning_files_one_supervised_case_for_the_surging_grid(client, auth_as):
    rt = client.app.state.runtime
    seed_surge(rt)
    body = client.get("/api/v1/analysis", headers=auth_as("supervisor")).json()
    warned = [(w["grid_code"], w["category"], w["count"], w["baseline"]) for w in body["early_warnings"]]
    assert warned == [(PLAZA_GRID, "0201", 6, 2.0)]               # 6 > 2 × 1.5; the steady grid is not warned
    wow = {r["key"]: r for r in body["week_over_week"]["by_grid"]}
    assert (wow[PLAZA_GRID]["this_week"], wow[PLAZA_GRID]["last_week"]) == (6, 2)
    assert body["repeat_addresses"][0]["address"] == "文一路 3 号 北门" and body["repeat_addresses"][0]["count"] == 6
    week = client.get("/api/v1/analysis", params={"days": 7}, headers=auth_as("supervisor")).json()["hotspots"]
    assert [(p["grid_code"], p["count"], p["address"]) for p in week["places"]] == [(PLAZA_GRID, 6, "文一路 3 号 北门")]
    assert [(g["code"], g["count"]) for g in week["grids"]] == [(PLAZA_GRID, 6)]   # the crossing's 2 are no hotspot
    assert len(week["heat"]) == 6 + 2                                # every case of the window is a heat point

    run = client.post("/api/v1/analysis/early-warning", headers=auth_as("supervisor"))
    assert run.status_code == 200, run.text
    [filed] = run.json()["filed"]
    assert filed["new"] and filed["supervised"] and filed["grid_code"] == PLAZA_GRID
    ticket = rt.cases.get_ticket(filed["ticket_id"])
    assert ticket["kind"] == "early_warning" and ticket["category"] == "0201" and ticket["supervised"]
    assert [h["action"] for h in ticket["history"]][-1] == "supervise"
    # the grid's leader sees it on their queue; running the rule again files nothing new
    leader = client.get("/api/v1/queue", headers=auth_as("leader_qhb")).json()["items"]
    assert filed["ticket_id"] in [t["id"] for t in leader]
    again = client.post("/api/v1/analysis/early-warning", headers=auth_as("supervisor")).json()["filed"]
    assert [(f["ticket_id"], f["new"]) for f in again] == [(filed["ticket_id"], False)]
    # a warning case does not count toward the next warning's figures
    assert client.get("/api/v1/analysis", headers=auth_as("supervisor")).json()["early_warnings"][0]["count"] == 6


def test_analysis_and_dashboard_are_cut_to_the_callers_grids(client, auth_as):
    rt = client.app.state.runtime
    seed_surge(rt)
    leader = client.get("/api/v1/analysis", headers=auth_as("leader_qhb")).json()
    assert {r["key"] for r in leader["week_over_week"]["by_grid"]} == {PLAZA_GRID}
    assert client.get("/api/v1/analysis", headers=auth_as("operator")).status_code == 403   # no KPI role
    assert client.post("/api/v1/analysis/early-warning", headers=auth_as("worker_my4")).status_code == 403
    dash = client.get("/api/v1/dashboard", headers=auth_as("worker_my4")).json()
    assert dash["open"] == 10 and [g["code"] for g in dash["top_grids"]] == [CROSSING_GRID]
    full = client.get("/api/v1/dashboard", headers=auth_as("operator")).json()
    assert full["open"] == 24 and [(g["code"], g["count"]) for g in full["top_grids"]] == [(PLAZA_GRID, 14), (CROSSING_GRID, 10)]
    assert sum(s["count"] for s in full["by_status"]) == 24 and len(full["dots"]) == 24
    # today's trend counts the cases created today (local time) per hour, up to now
    today = [t for t in full["trend"]]
    assert today and sum(h["count"] for h in today) == full["new_today"]


def test_the_sla_roles_scan_files_the_warning_without_anyone_asking(client):
    """The rule on its clock: the SLA role's scan (one pass here) files the same supervised case, once."""
    rt = client.app.state.runtime
    seed_surge(rt)
    assert "early-warning" in [name for name, _ in rt.roles["sla"].loops]
    from alerts.analysis import EarlyWarningScan

    scan = EarlyWarningScan(rt.cases, rt.intake, rt.grids, rt.deployment.alerts.early_warning)
    [first] = scan.run_once()
    assert first["new"] and first["supervised"] and first["grid_code"] == PLAZA_GRID
    assert [(f["ticket_id"], f["new"]) for f in scan.run_once()] == [(first["ticket_id"], False)]
