"""KPIs over a worked month: rates, times, grouping, and the text report."""
from __future__ import annotations

import pytest

from alerts.kpis import compute, month_bounds, monthly_report
from alerts.sla import Escalator
from tests.alerts.helpers import CROSSING, anomaly

pytestmark = pytest.mark.timeout(60)
W = dict(role="grid_worker")
D = dict(role="dispatcher")


def work(service, tid, *, rework=False, extend=False, rating=None):
    service.transition(tid, "sign", "w", **W)
    if extend:
        service.transition(tid, "request_extension", "w", "需要时间", hours=4, **W)
        service.transition(tid, "approve_extension", "d", **D)
    service.transition(tid, "feedback", "w", **W)
    if rework:
        service.transition(tid, "rework", "d", "未处理完", **D)
        service.transition(tid, "feedback", "w", **W)
    service.transition(tid, "verify", "d", **D)
    service.transition(tid, "close", "d", **D)
    if rating:
        service.transition(tid, "rate", "r", role="resident", score=rating)


def test_kpis_and_report(intake, service, store, grids, alerts_cfg, redis_client, keys, clock):
    a = intake.file(anomaly(source_id="c1")).ticket_id
    b = intake.file(anomaly(source_id="c2")).ticket_id
    c = intake.file(anomaly(source_id="c3", at=CROSSING)).ticket_id
    d = intake.file(anomaly(source_id="c4", at=CROSSING)).ticket_id
    clock.advance(minutes=5)
    work(service, a, rating=5)
    work(service, b, rework=True, extend=True, rating=2)
    clock.advance(minutes=10)                                  # c and d miss their 10-minute sign-for
    Escalator(store, grids, alerts_cfg, redis_client, keys, clock=clock).scan()
    work(service, c)
    service.transition(d, "false_alarm", "op", "误报", role="operator")
    k = compute(store, alerts_cfg, group_by="grid", now=clock())
    o = k["overall"]
    assert o["cases"] == 3 and o["closed"] == 3                      # the false alarm is not a case
    assert o["sign_on_time_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert o["rework_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert o["extension_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert o["satisfaction_rate"] == 0.5 and o["ratings"] == 2
    assert o["time_to_sign_min"]["p50"] == 5.0 and o["time_to_sign_min"]["p90"] == 15.0
    assert set(k["groups"]) == {"330199001001001", "330199002002004"}
    assert k["groups"]["330199002002004"]["sign_on_time_rate"] == 0.0
    lv = compute(store, alerts_cfg, group_by="level", now=clock())
    assert set(lv["groups"]) == {"grid", "community"}
    assert service.kpis(group_by="month")["groups"].keys() == {"2026-11"}
    text = monthly_report(store, "2026-11", alerts_cfg)
    assert "按期签收率" in text and "330199001001001" in text and "TOTAL" in text and "66.7%" in text
    assert "TOTAL" in monthly_report(store, "2026-10", alerts_cfg)
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds("November")
    with pytest.raises(ValueError, match="group_by"):
        compute(store, alerts_cfg, group_by="weather")
