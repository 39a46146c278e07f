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


class DutyShift(_Strict):
    grid: str = Field(description="grid code (any level) this person is on duty for")
    user: str
    role: Literal["grid_worker", "grid_leader", "dispatcher", "supervisor"] = "grid_worker"
    days: str = Field("mon-sun", description="mon-sun, mon-fri, …")
    start: str = Field("00:00", pattern=r"^\d{2}:\d{2}$")
    end: str = Field("24:00", pattern=r"^\d{2}:\d{2}$")


class AlertsConfig(_Strict):
    default_category: str = "0101"
    escalation_chain: list[Literal["grid", "community", "street", "district"]] = ["grid", "community", "street", "district"]
    categories: list[CategoryConfig] = Field(default_factory=list)
    roster: list[DutyShift] = Field(default_factory=list)
