"""Activity retention on SQLite and PostgreSQL: rows written by the real intake are deleted past ``keep_days``
and beyond a camera's newest ``max_per_camera``; tickets and other cameras' recent rows stay; the SLA role's loop
prunes without anyone asking."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from alerts.activity_retention import ActivityPruner, prune_activity
from alerts.config import ActivityRetentionConfig
from alerts.models import Activity, Ticket
from alerts.roles import sla_role
from tests.alerts.helpers import CROSSING, anomaly, poll

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)


def _rows(store) -> dict[str, list[datetime]]:
    with store.read() as s:
        out: dict[str, list[datetime]] = {}
        for cam, at in s.execute(select(Activity.source_id, Activity.occurred_at).order_by(Activity.occurred_at)):
            out.setdefault(cam, []).append(at)
        return out


def _motion(intake, cam: str, when: datetime, **kw) -> None:
    intake.file(anomaly(kind="motion", source_id=cam, zone=None, occurred_at=when, tier="activity", **kw))


def test_old_rows_and_a_busy_cameras_oldest_rows_are_deleted(intake, store):
    for days in (45, 31, 29, 1):  # cam-plaza: two beyond the 30 days, two within
        _motion(intake, "cam-plaza", NOW - timedelta(days=days))
    for minute in range(8):  # cam-crossing: a busy camera, 8 recent rows; 5 are kept
        _motion(intake, "cam-crossing", NOW - timedelta(minutes=60 - minute), at=CROSSING)
    intake.file(anomaly(kind="intrusion", occurred_at=NOW - timedelta(days=90)))  # an old ticket
    with store.read() as s:
        tickets = s.scalar(select(func.count()).select_from(Ticket))
    assert tickets == 1 and sum(len(v) for v in _rows(store).values()) == 12

    done = prune_activity(store, ActivityRetentionConfig(keep_days=30, max_per_camera=5), now=NOW)

    assert (done.by_age, done.by_count) == (2, 3)
    rows = _rows(store)
    assert rows["cam-plaza"] == [NOW - timedelta(days=29), NOW - timedelta(days=1)]
    assert rows["cam-crossing"] == [NOW - timedelta(minutes=60 - m) for m in range(3, 8)]  # the newest five
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == tickets  # tickets are never pruned
    again = prune_activity(store, ActivityRetentionConfig(keep_days=30, max_per_camera=5), now=NOW)
    assert again.total == 0


def test_the_sla_role_prunes_on_its_clock(intake, store, grids, alerts_cfg, redis_client, keys):
    from alerts.sla import Escalator

    now = datetime.now(timezone.utc)
    _motion(intake, "cam-plaza", now - timedelta(days=10))
    _motion(intake, "cam-plaza", now - timedelta(minutes=1))
    pruner = ActivityPruner(store, ActivityRetentionConfig(keep_days=7, max_per_camera=100, prune_interval_s=3600))
    role = sla_role(Escalator(store, grids, alerts_cfg, redis_client, keys), None, pruner)
    role.start()
    try:
        poll(lambda: len(_rows(store).get("cam-plaza", [])) == 1, timeout=10)
        assert role.status()["loops"]["activity-retention"] is True
    finally:
        role.stop()
    (kept,) = _rows(store)["cam-plaza"]
    assert kept > now - timedelta(days=7)  # the recent row stayed, the 10-day-old one went


def test_retention_config_refuses_nonsense():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ActivityRetentionConfig(keep_days=0)
    with pytest.raises(ValidationError):
        ActivityRetentionConfig(max_per_camera=0)
