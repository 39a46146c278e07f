"""The categories people report under: the deployment's own plus local ones, with keywords and hand-over.

``config/report_categories.yaml`` adds what reports need and cameras do not (暴露垃圾, 噪声扰民, 医疗急救 …),
keywords for the rule half of the classifier, and which emergency line (110/119/120) takes a category
over. ``effective_alerts_config`` returns the deployment's AlertsConfig with the local categories
appended, so intake, deadlines and KPIs treat a report's category like any other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerts.config import AlertsConfig, CategoryConfig

Urgency = Literal["low", "normal", "high", "critical"]
URGENCIES: tuple[str, ...] = ("low", "normal", "high", "critical")
URGENCY_LABELS = {"low": "一般", "normal": "普通", "high": "紧急", "critical": "特急"}
HANDOVER_LABELS = {"110": "110 公安", "119": "119 消防", "120": "120 急救"}


class CategoryFileError(ValueError):
    """The categories file is wrong; the message names the file and the entry."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{2,8}$")
    name: str | None = None
    label: bool = True
    handover: Literal["110", "119", "120"] | None = None
    keywords: list[str] = Field(default_factory=list)
    # Everything else is a CategoryConfig field, used when the entry defines a new category.
    severity: Literal["low", "normal", "high", "critical"] | None = None
    police: bool | None = None
    owner_department: str | None = None
    sign_within: dict[str, Any] | None = None
    handle_within: dict[str, Any] | None = None
    merge_window_s: float | None = None
    merge_radius_m: float | None = None

    def category_config(self) -> CategoryConfig:
        data = {k: v for k, v in self.model_dump().items()
                if k not in ("label", "handover", "keywords") and v is not None}
        return CategoryConfig.model_validate(data)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urgency_keywords: dict[Urgency, list[str]] = Field(default_factory=dict)
    categories: list[_Entry] = Field(default_factory=list)


@dataclass(frozen=True)
class ReportCategory:
    code: str
    name: str
    severity: str
    handover: str | None
    police: bool
    keywords: tuple[str, ...]
    label: bool

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "severity": self.severity, "handover": self.handover,
                "handover_label": HANDOVER_LABELS.get(self.handover or ""), "police": self.police}


@dataclass
class Catalog:
    """Every category a report can be filed under, in file order after the deployment's."""

    categories: dict[str, ReportCategory]
    local: list[CategoryConfig] = field(default_factory=list)
    urgency_keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def labels(self) -> list[str]:
        """Codes the classifier may suggest."""
        return [c.code for c in self.categories.values() if c.label]

    def get(self, code: str) -> ReportCategory | None:
        return self.categories.get(code)

    def name(self, code: str) -> str:
        c = self.categories.get(code)
        return c.name if c else code

    def handover(self, code: str) -> str | None:
        c = self.categories.get(code)
        return c.handover if c else None

    def public(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.categories.values() if c.label]


def load_catalog(path: Path | None, alerts_cfg: AlertsConfig) -> Catalog:
    """Read the categories file (absent: only the deployment's categories, no keywords)."""
    entries: list[_Entry] = []
    urgency: dict[str, list[str]] = {}
    if path is not None and Path(path).exists():
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            parsed = _File.model_validate(raw)
        except yaml.YAMLError as exc:
            raise CategoryFileError(f"{path}: not valid YAML: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CategoryFileError(f"{path}: {where}: {first['msg']}") from None
        entries, urgency = parsed.categories, parsed.urgency_keywords
    by_entry = {e.code: e for e in entries}
    cats: dict[str, ReportCategory] = {}
    for c in alerts_cfg.categories:
        e = by_entry.get(c.code)
        cats[c.code] = ReportCategory(c.code, c.name, c.severity, e.handover if e else None, c.police,
                                      tuple(e.keywords) if e else (), e.label if e else False)
    local: list[CategoryConfig] = []
    for e in entries:
        if e.code in cats:
            continue
        if not e.name:
            raise CategoryFileError(f"{path}: category {e.code} is not in the deployment, so it needs a name")
        try:
            cfg = e.category_config()
        except ValidationError as exc:
            raise CategoryFileError(f"{path}: category {e.code}: {exc.errors()[0]['msg']}") from None
        local.append(cfg)
        cats[e.code] = ReportCategory(cfg.code, cfg.name, cfg.severity, e.handover, cfg.police, tuple(e.keywords), e.label)
    return Catalog(cats, local, {k: tuple(v) for k, v in urgency.items()})


def effective_alerts_config(alerts_cfg: AlertsConfig, catalog: Catalog) -> AlertsConfig:
    """The deployment's case settings with the local report categories appended (codes it already has win)."""
    if not catalog.local:
        return alerts_cfg
    known = {c.code for c in alerts_cfg.categories}
    extra = [c for c in catalog.local if c.code not in known]
    return alerts_cfg.model_copy(update={"categories": [*alerts_cfg.categories, *extra]})
