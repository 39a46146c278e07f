"""Schema of the deployment file's case-system sections: grids, categories, duty roster, store."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GridsConfig(_Strict):
    file: str = Field(description="GeoJSON FeatureCollection of the grid hierarchy, relative to the deployment file")
    version: str = "1"


class TimeLimit(_Strict):
    amount: float = Field(gt=0)
    unit: Literal["work_hours", "work_days", "hours", "minutes"] = "hours"


class CategoryConfig(_Strict):
    """An event or component category after GB/T 30428 (大类/小类)."""

    code: str = Field(pattern=r"^\d{2,8}$")
    name: str
    kind: Literal["event", "component"] = "event"
    severity: Literal["low", "normal", "high", "critical"] = "normal"
    sign_within: TimeLimit = TimeLimit(amount=30, unit="minutes")
    handle_within: TimeLimit = TimeLimit(amount=1, unit="work_days")
    anomaly_kinds: list[str] = Field(default_factory=list, description="anomaly kinds filed under this category")
    police: bool = Field(False, description="also hand to the police duty desk")
    owner_department: str | None = None
    merge_window_s: float = Field(300.0, ge=0)
    merge_radius_m: float = Field(50.0, ge=0)
    confirm: bool | None = Field(None, description="wait for an operator to confirm (立案) before dispatch; unset: AlertsConfig.confirm_sources decides")
    auto_close_on_clear: bool = Field(False, description="close the open ticket when the source reports the condition cleared (e.g. camera back online)")
    suppress_after_false_alarm_s: float = Field(3600.0, ge=0, description="how long a false alarm on a camera suppresses the same camera+zone+kind")


class DutyShift(_Strict):
    grid: str = Field(description="grid code (any level) this person is on duty for")
    user: str
    role: Literal["grid_worker", "grid_leader", "dispatcher", "supervisor"] = "grid_worker"
    days: str = Field("mon-sun", description="mon-sun, mon-fri, …")
    start: str = Field("00:00", pattern=r"^\d{2}:\d{2}$")
    end: str = Field("24:00", pattern=r"^\d{2}:\d{2}$")


class WebhookConfig(_Strict):
    """A URL told about ticket events, each POST signed with HMAC-SHA256 over ``timestamp.body``."""

    url: str
    secret: str = Field(repr=False)
    events: list[str] = Field(default_factory=lambda: ["*"], description="event types (ticket.created, ticket.escalated, …) or *")
    timeout_s: float = Field(5.0, gt=0)


class EarlyWarningConfig(_Strict):
    """研判 early warning: a grid's count of a category in the window against its own baseline (alerts.analysis).

    The SLA role runs the rule every ``scan_interval_s``; POST /api/v1/analysis/early-warning (the 研判 page's
    button) runs it at once."""

    window_days: int = Field(7, ge=1, le=90, description="the window counted, ending now")
    baseline_windows: int = Field(4, ge=1, le=52, description="windows before it whose mean is the baseline")
    margin: float = Field(0.5, ge=0, le=100, description="warn when count > baseline × (1 + margin)")
    min_count: int = Field(3, ge=1, description="never warn below this many cases in the window")
    categories: list[str] = Field(default_factory=list, description="category codes watched; empty: all")
    scan_interval_s: float = Field(3600.0, ge=0, description="how often the SLA role runs the rule; 0: only on request")


class ActivityRetentionConfig(_Strict):
    """How long activity records (the ``activity`` review tier: motion alone, by default) are kept
    (``alerts.activity_retention``); the SLA role prunes them every ``prune_interval_s``."""

    keep_days: float = Field(30.0, gt=0, description="activity older than this many days is deleted")
    max_per_camera: int = Field(20000, ge=1, description="at most this many activity rows per camera (source); the oldest go first")
    prune_interval_s: float = Field(3600.0, ge=0, description="how often the SLA role prunes; 0: never")


class AlertsConfig(_Strict):
    default_category: str = "0101"
    escalation_chain: list[Literal["grid", "community", "street", "district"]] = ["grid", "community", "street", "district"]
    categories: list[CategoryConfig] = Field(default_factory=list)
    roster: list[DutyShift] = Field(default_factory=list)
    case_prefix: str = Field("GW", pattern=r"^[A-Z]{1,6}$", description="letters in front of case numbers: QS20261123-000123")
    timezone: str = "Asia/Shanghai"
    working_hours: list[str] = Field(
        default_factory=lambda: ["09:00-12:00", "13:30-18:00"],
        description="working periods of a working day (local time); SLA work_hours/work_days count only these")
    remind_at_fraction: float = Field(0.8, gt=0, le=1, description="send a reminder (催办) when this share of the time to a deadline has passed")
    confirm_sources: list[Literal["camera", "sensor", "alarm", "report"]] = Field(
        default_factory=list, description="sources whose tickets wait for an operator to confirm (立案) before dispatch")
    intake_claim_idle_s: float = Field(30.0, gt=0, description="re-claim anomaly entries a dead intake consumer left pending this long")
    sla_scan_interval_s: float = Field(5.0, gt=0)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    mqtt_topic_prefix: str = "gridwatch/tickets"
    early_warning: EarlyWarningConfig = EarlyWarningConfig()
    activity_retention: ActivityRetentionConfig = ActivityRetentionConfig()
