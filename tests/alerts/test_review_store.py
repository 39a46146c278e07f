"""Review items from the store on SQLite and PostgreSQL: activity rows written by the real intake (no ticket),
tickets as alerts, one total order across both tables with stable cursors, grid scope."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from alerts.models import Activity, Ticket
from alerts.review import Cursor, ReviewFilter, review_items
from tests.alerts.helpers import CROSSING, anomaly

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)


def test_activity_and_alerts_in_one_order_with_cursors_and_scope(intake, store):
    made = []
    for i in range(6):  # same instant in pairs: an alert and an activity record
        at = T0 + timedelta(seconds=30 * (i // 2))
        tier = "alert" if i % 2 else "activity"
        ref = intake.file(anomaly(kind="intrusion" if tier == "alert" else "motion", zone=f"z{i}", occurred_at=at,
                                  tier=tier, details={"cause": {"track_id": i}}))
        made.append((tier, ref))
    intake.file(anomaly(kind="motion", source_id="cam-crossing", zone=None, at=CROSSING, occurred_at=T0, tier="activity"))
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 3  # activity never became a ticket
        assert s.scalar(select(func.count()).select_from(Activity)) == 4
    assert all(ref.ticket_id is None for tier, ref in made if tier == "activity")

    page1, cur = review_items(store, ReviewFilter(camera_id="cam-plaza"), limit=4)
    page2, end = review_items(store, ReviewFilter(camera_id="cam-plaza"), limit=4, before=cur)
    items = page1 + page2
    assert end is None and len(items) == 6 and len({i["id"] for i in items}) == 6
    assert [i["tier"] for i in items] == ["alert", "activity"] * 3  # newest first; at one instant the alert first
    assert [i["cause"]["track_id"] for i in items] == [5, 4, 3, 2, 1, 0]
    assert Cursor.decode(cur.encode()) == cur

    mine, _ = review_items(store, ReviewFilter(visible=("330199001001001",)), limit=50)
    assert {i["grid"] for i in mine} == {"330199001001001"} and len(mine) == 6
    theirs, _ = review_items(store, ReviewFilter(visible=("330199002002004",)), limit=50)
    assert [(i["tier"], i["camera_id"]) for i in theirs] == [("activity", "cam-crossing")]
    assert review_items(store, ReviewFilter(visible=()), limit=50) == ([], None)

    oldest_first, _ = review_items(store, ReviewFilter(camera_id="cam-plaza"), limit=50, newest_first=False)
    assert [i["id"] for i in oldest_first] == [i["id"] for i in reversed(items)]
