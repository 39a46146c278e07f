"""Case numbers reserved a batch at a time: one upsert per batch, consecutive, gap-free (unused ones given
back before the commit), restarting at local midnight also inside one batch — on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.intake import Intake
from tests.alerts.helpers import anomaly

pytestmark = pytest.mark.timeout(60)


def press(box: str, lon: float, lat: float, at: datetime):
    return anomaly(kind="one_key_alarm", source="alarm", source_id=box, zone=None, at=(lon, lat), occurred_at=at)


def test_next_case_numbers_reserves_a_range_and_gives_back_the_rest(store):
    at = datetime(2026, 11, 24, 2, tzinfo=timezone.utc)
    with store.write() as s:
        assert store.next_case_numbers(s, "QS", at, count=3) == [f"QS20261124-00000{i}" for i in (1, 2, 3)]
        assert store.next_case_numbers(s, "QS", at, count=4)[0] == "QS20261124-000004"
        store.release_case_numbers(s, "20261124", 2)          # 000006 and 000007 were not used
    with store.write() as s:
        assert store.next_case_number(s, "QS", at) == "QS20261124-000006"
    with pytest.raises(ValueError):
        with store.write() as s:
            store.next_case_numbers(s, "QS", at, count=0)


def test_batch_numbers_are_gap_free_and_restart_at_local_midnight(store, grids, alerts_cfg, redis_client, keys):
    store.sync_grids(grids)
    now = [datetime(2026, 11, 24, 15, 58, tzinfo=timezone.utc)]    # 23:58 in Asia/Shanghai

    def clock() -> datetime:
        now[0] += timedelta(minutes=1)                                # each press a minute later
        return now[0]

    intake = Intake(store, grids, alerts_cfg, redis_client, keys, consumer="numbers-test", clock=clock)
    t0 = now[0]
    refs = intake.file_many([
        press("stb-0001", 120.1052, 30.2761, t0),                    # 23:59 → last number of the 24th
        press("stb-0002", 120.1052, 30.2761, t0),                    # merged: takes no number
        press("stb-0003", 120.1070, 30.2761, t0),                    # 00:01 → first number of the 25th
        press("stb-0004", 120.1090, 30.2761, t0),                    # 00:02
    ])
    assert [r.created for r in refs] == [True, False, True, True]
    assert [refs[0].number, refs[2].number, refs[3].number] == [
        "QS20261124-000001", "QS20261125-000001", "QS20261125-000002"]
    # The numbers reserved and not used were given back: the next case continues without a gap.
    later = intake.file_many([press("stb-0005", 120.1110, 30.2761, now[0])])
    assert later[0].created and later[0].number == "QS20261125-000003"


def test_batch_rows_keep_their_order_around_a_clear(intake, service, clock):
    """Occurrences and history go in with bulk inserts; a clear in the same batch still comes after them."""
    smoke = dict(kind="smoke_alarm", source="sensor", source_id="smoke-0042", zone=None, at=(120.1052, 30.2761))
    refs = intake.file_many([anomaly(**smoke, occurred_at=clock()),
                             anomaly(**smoke, occurred_at=clock()),                     # merged into the first
                             anomaly(**smoke, state="cleared", occurred_at=clock())])
    assert refs[0].created and refs[1].merged and refs[2].cleared
    assert refs[0].ticket_id == refs[1].ticket_id == refs[2].ticket_id
    t = service.get_ticket(refs[0].ticket_id)
    assert [(o["state"], o["merged"]) for o in t["occurrences"]] == [
        ("firing", False), ("firing", True), ("cleared", True)]
    assert [h["action"] for h in t["history"]] == ["create", "dispatch", "clear"]
    assert t["occurrence_count"] == 2 and t["cleared_at"]
