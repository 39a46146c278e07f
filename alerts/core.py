"""The case core of one process: its ``Intake`` and its ``CaseService``, built once by ``build_core``.

Every part that files or times tickets — intake, the alarm filer, the human channels, the escalator,
early warning, the API — must see the same categories, or a report filed under a local category
(噪声扰民 …) would have no deadlines. The local report categories are therefore merged into the
deployment's here, once, and every other part receives the built core instead of building its own.
The human channels (``alerts.channels.build``) take the core as it is.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis

from alerts.channels.categories import Catalog, effective_alerts_config, load_catalog
from alerts.config import AlertsConfig
from alerts.grids import GridIndex
from alerts.intake import Intake, utcnow
from alerts.service import CaseService
from alerts.store import Store
from alerts.streams import StreamKeys


@dataclass(frozen=True)
class CoreParts:
    """The connections the case core works over: the SQL store, the grids, Redis and its stream keys."""

    store: Store
    grids: GridIndex
    redis: redis.Redis
    keys: StreamKeys


@dataclass(frozen=True)
class Core:
    """What ``build_core`` built: one intake and one case service over the effective categories."""

    parts: CoreParts
    intake: Intake
    cases: CaseService
    alerts_cfg: AlertsConfig   # the deployment's settings with the local report categories appended
    catalog: Catalog           # every category a report can be filed under (names, keywords, hand-over)
    consumer: str              # this process's consumer name in the streams' groups
    clock: Callable[[], datetime]


def build_core(parts: CoreParts, alerts: AlertsConfig, report_categories: Path | None, *, consumer: str | None = None,
               clock: Callable[[], datetime] = utcnow) -> Core:
    """Intake and CaseService over ``alerts`` plus the categories in ``report_categories`` (a missing file adds none)."""
    catalog = load_catalog(report_categories, alerts)
    alerts_cfg = effective_alerts_config(alerts, catalog)
    consumer = consumer or f"{os.uname().nodename}-{os.getpid()}"
    intake = Intake(parts.store, parts.grids, alerts_cfg, parts.redis, parts.keys, consumer=consumer, clock=clock)
    cases = CaseService(parts.store, parts.grids, alerts_cfg, parts.redis, parts.keys, clock=clock)
    return Core(parts, intake, cases, alerts_cfg, catalog, consumer, clock)
