"""Group commit: ``Intake.file_many`` files a batch in one transaction with the semantics of filing each
anomaly in turn — idempotent by anomaly id (also twice in one batch), merging presses of one place within the
window (also within one batch), publishing each case once — on SQLite and PostgreSQL with a real Redis."""
from __future__ import annotations

import pytest

from alerts.intake import Intake
from tests.alerts.helpers import anomaly

pytestmark = pytest.mark.timeout(60)


def press(box: str, lon: float, lat: float, clock, **kw):
    return anomaly(kind="one_key_alarm", source="alarm", source_id=box, zone=None, at=(lon, lat), occurred_at=clock(), **kw)


def duty_ids(redis_client, keys, unit: str) -> list[int]:
    return [int(f[b"ticket_id"]) for _, f in redis_client.xrange(keys.duty(unit))]


def test_file_many_is_idempotent_by_anomaly_id(intake, service, redis_client, keys, clock):
    a = press("stb-0001", 120.1052, 30.2761, clock)
    b = press("stb-0200", 120.1350, 30.2530, clock)     # another grid, far away
    first = intake.file_many([a, b, a])                   # the same press twice in one batch
    assert first[0].created and first[1].created
    assert first[2].duplicate and first[2].ticket_id == first[0].ticket_id and first[2].number == first[0].number
    again = intake.file_many([b, a])                      # the whole batch re-sent (redelivery, retry)
    assert [r.duplicate for r in again] == [True, True]
    assert [r.ticket_id for r in again] == [first[1].ticket_id, first[0].ticket_id]
    for ref in first[:2]:
        t = service.get_ticket(ref.ticket_id)
        assert t["occurrence_count"] == 1 and len(t["occurrences"]) == 1
        assert duty_ids(redis_client, keys, ref.unit_code) == [ref.ticket_id]   # published once, not per repeat
    assert intake.file(a).duplicate                       # file() is file_many([a])[0]


def test_file_many_merges_within_the_batch(intake, service, redis_client, keys, clock):
    refs = intake.file_many([
        press("stb-0001", 120.1052, 30.2761, clock),      # opens the case
        press("stb-0009", 120.1054, 30.2762, clock),      # a neighbour ~22 m away: same case
        press("stb-0010", 120.1060, 30.2761, clock),      # ~77 m away: another case (radius 30 m)
        press("stb-0001", 120.1052, 30.2761, clock),      # the first box again (a new press id): same case
    ])
    assert refs[0].created and refs[2].created
    assert refs[1].merged and refs[3].merged and refs[1].ticket_id == refs[3].ticket_id == refs[0].ticket_id
    assert refs[2].ticket_id != refs[0].ticket_id
    t = service.get_ticket(refs[0].ticket_id)
    assert t["occurrence_count"] == 3 and [o["merged"] for o in t["occurrences"]] == [False, True, True]
    assert [h["action"] for h in t["history"]][:2] == ["create", "dispatch"]
    # one duty entry per new case; the merged presses only add events
    units = {refs[0].unit_code, refs[2].unit_code}
    assert sorted(i for u in units for i in duty_ids(redis_client, keys, u)) == sorted([refs[0].ticket_id, refs[2].ticket_id])
    # a later batch merges into the case the earlier batch opened
    clock.advance(seconds=30)
    later = intake.file_many([press("stb-0011", 120.1053, 30.2762, clock)])
    assert later[0].merged and later[0].ticket_id == refs[0].ticket_id
    # case numbers stay sequential, with no gaps left by merged presses
    assert [refs[0].number, refs[2].number] == ["QS20261124-000001", "QS20261124-000002"]


def test_file_many_one_bad_anomaly(intake, service, store, grids, alerts_cfg, redis_client, keys, clock, monkeypatch):
    good = [press(f"stb-{i:04d}", 120.1052 + i * 0.002, 30.2761, clock) for i in range(3)]
    bad = press("stb-bad", 120.1100, 30.2761, clock)
    real = intake.policy.classify

    def classify(a):
        if a.source_id == "stb-bad":
            raise ValueError("cannot classify this one")
        return real(a)

    monkeypatch.setattr(intake.policy, "classify", classify)
    with pytest.raises(ValueError):                       # all or nothing by default
        intake.file_many([good[0], bad, good[1]])
    assert service.list_tickets().total == 0
    refs = intake.file_many([good[0], bad, good[1], good[2]], return_exceptions=True)
    assert isinstance(refs[1], ValueError)
    assert all(r.created for r in (refs[0], refs[2], refs[3]))
    assert service.list_tickets().total == 3


def test_file_many_store_outage_fills_every_slot(tmp_path, grids, alerts_cfg, redis_client, keys, clock):
    from sqlalchemy.exc import OperationalError

    from alerts.store import open_store

    st = open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    st.sync_grids(grids)
    it = Intake(st, grids, alerts_cfg, redis_client, keys, consumer="batch-outage", clock=clock)
    st.engine.dispose()
    (tmp_path / "cases.db").unlink()
    (tmp_path / "cases.db").mkdir()                       # the database file is gone: every statement fails
    try:
        refs = it.file_many([press("stb-0001", 120.1052, 30.2761, clock), press("stb-0002", 120.1152, 30.2761, clock)],
                            return_exceptions=True)
        assert len(refs) == 2 and all(isinstance(r, OperationalError) for r in refs)
    finally:
        st.close()
