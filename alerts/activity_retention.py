"""Activity retention: activity rows older than ``keep_days``, and a camera's rows beyond its newest
``max_per_camera``, are deleted.

Why: activity (motion alone, by default) is written for every moving camera all day; unlike tickets it is never
closed or archived, so without a bound the table grows by millions of rows a month and the camera timeline's
queries slow down with it. The age bound is the retention a deployment promises; the count bound keeps one busy
camera (a tree in the wind) from holding most of the table within that age. Tickets are never touched.

The evidence files the pruned rows name are left alone: a camera's clip may be shared with a ticket's anomaly
(``detectors/evidence.py`` links one clip to several anomalies), and evidence files have their own retention.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select

from alerts.config import ActivityRetentionConfig
from alerts.models import Activity
from alerts.store import Store

log = logging.getLogger(__name__)

CHUNK = 1000  # ids per DELETE: bounded statements, short locks


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many activity rows one pass deleted, and why."""

    by_age: int
    by_count: int

    @property
    def total(self) -> int:
        return self.by_age + self.by_count


def _delete_ids(store: Store, ids: list[int]) -> int:
    for i in range(0, len(ids), CHUNK):
        with store.write() as s:
            s.execute(delete(Activity).where(Activity.id.in_(ids[i:i + CHUNK])))
    return len(ids)


def prune_activity(store: Store, cfg: ActivityRetentionConfig, now: datetime | None = None) -> Pruned:
    """Delete the activity rows outside ``cfg`` (older than ``keep_days``; per source beyond ``max_per_camera``,
    newest kept)."""
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=cfg.keep_days)
    with store.read() as s:
        old = list(s.scalars(select(Activity.id).where(Activity.occurred_at < cutoff)))
    by_age = _delete_ids(store, old)
    by_count = 0
    with store.read() as s:
        crowded = s.execute(select(Activity.source_kind, Activity.source_id).group_by(Activity.source_kind, Activity.source_id)
                            .having(func.count() > cfg.max_per_camera)).all()
    for kind, source in crowded:
        with store.read() as s:
            extra = list(s.scalars(select(Activity.id).where(Activity.source_kind == kind, Activity.source_id == source)
                                   .order_by(Activity.occurred_at.desc(), Activity.id.desc()).offset(cfg.max_per_camera)))
        by_count += _delete_ids(store, extra)
    return Pruned(by_age, by_count)


class ActivityPruner:
    """``prune_activity`` on a clock (``prune_interval_s``), run by the SLA role; a failed pass is retried next time."""

    def __init__(self, store: Store, cfg: ActivityRetentionConfig):
        self.store, self.cfg = store, cfg

    def run_once(self, now: datetime | None = None) -> Pruned:
        done = prune_activity(self.store, self.cfg, now)
        if done.total:
            log.info("activity retention: %d row(s) older than %g days and %d beyond %d per camera deleted",
                     done.by_age, self.cfg.keep_days, done.by_count, self.cfg.max_per_camera)
        return done

    def run_forever(self, stop: threading.Event) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # the next pass tries again; keeping rows a little longer loses nothing
                log.exception("activity retention pass failed; retrying at the next interval")
            if stop.wait(self.cfg.prune_interval_s):
                return
