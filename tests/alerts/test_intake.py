"""Intake against a real Redis and both stores: idempotency, merging, unmerge, clearing, dead letters, re-claiming."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from alerts.intake import INTAKE_GROUP, Intake
from alerts.streams import publish_anomaly
from tests.alerts.helpers import CROSSING, MARGIN, PLAZA, anomaly, poll

pytestmark = pytest.mark.timeout(60)


def test_same_anomaly_twice_is_one_occurrence(intake, service, redis_client, keys):
    a = anomaly()
    first, second = intake.file(a), intake.file(a)
    assert first.created and second.duplicate and first.ticket_id == second.ticket_id
    t = service.get_ticket(first.ticket_id)
    assert t["occurrence_count"] == 1 and len(t["occurrences"]) == 1
    assert redis_client.xlen(keys.duty("330199001001001")) == 1
    # the same id through the stream as well
    publish_anomaly(redis_client, keys, a)
    assert intake.process_batch(block_ms=100) == 1
    assert len(service.get_ticket(first.ticket_id)["occurrences"]) == 1
    assert redis_client.xpending(keys.anomalies, INTAKE_GROUP)["pending"] == 0


def test_camera_merge_window(intake, service, clock):
    r1 = intake.file(anomaly(occurred_at=clock()))
    clock.advance(minutes=4)
    r2 = intake.file(anomaly(occurred_at=clock()))       # crowd merge window: 300 s
    assert r2.merged and r2.ticket_id == r1.ticket_id
    r3 = intake.file(anomaly(zone="gate", occurred_at=clock()))
    r4 = intake.file(anomaly(kind="loitering", occurred_at=clock()))
    assert r3.created and r4.created                       # another zone / kind is another case
    clock.advance(minutes=6)
    r5 = intake.file(anomaly(occurred_at=clock()))
    assert r5.created                                      # window passed since the last occurrence
    t = service.get_ticket(r1.ticket_id)
    assert t["occurrence_count"] == 2 and [o["merged"] for o in t["occurrences"]] == [False, True]


def test_alarms_merge_within_radius(intake, clock):
    def press(box: str, lon: float, lat: float):
        return intake.file(anomaly(kind="one_key_alarm", source="alarm", source_id=box, zone=None, at=(lon, lat),
                                   occurred_at=clock()))

    r1 = press("stb-0001", 120.1052, 30.2761)
    clock.advance(seconds=30)
    r2 = press("stb-0001", 120.1052, 30.2761)              # same box pressed again
    r3 = press("stb-0009", 120.1054, 30.2762)              # a neighbour ~22 m away
    r4 = press("stb-0010", 120.1060, 30.2761)              # ~77 m away: another case (radius 30 m)
    assert r2.merged and r3.merged and r2.ticket_id == r3.ticket_id == r1.ticket_id
    assert r4.created and r4.ticket_id != r1.ticket_id


def test_manual_merge_and_unmerge(intake, service, redis_client, keys):
    a = intake.file(anomaly(kind="one_key_alarm", source="alarm", source_id="stb-1", zone=None, at=PLAZA)).ticket_id
    b = intake.file(anomaly(kind="crowd", source_id="cam-plaza", at=PLAZA)).ticket_id
    t = service.transition(b, "merge", "dispatcher", "同一事件", role="dispatcher", into=a)
    assert t["id"] == a and t["occurrence_count"] == 2
    src = service.get_ticket(b)
    assert src["status"] == "merged" and src["merged_into"] == a
    assert service.list_tickets().total == 1                 # merged tickets leave the default list
    assert service.allowed_actions(src, "dispatcher") == ["comment", "unmerge"]
    with pytest.raises(Exception, match="not open"):
        service.merge(a, b, "dispatcher")
    back = service.transition(b, "unmerge", "dispatcher", "并非同一事件", role="dispatcher")
    assert back["status"] == "dispatched" and back["occurrence_count"] == 1 and back["merged_into"] is None
    assert service.get_ticket(a)["occurrence_count"] == 1
    assert [h["action"] for h in back["history"]][-2:] == ["merge", "unmerge"]


def test_split_an_automatic_merge(intake, service, clock):
    r1 = intake.file(anomaly(occurred_at=clock()))
    r2 = intake.file(anomaly(occurred_at=clock() + timedelta(seconds=5)))
    t = service.get_ticket(r1.ticket_id)
    occ = next(o for o in t["occurrences"] if o["anomaly_id"] == t["occurrences"][1]["anomaly_id"])
    assert r2.merged
    new = service.split_occurrence(occ["id"], "dispatcher", "不同人群", role="dispatcher")
    assert new["id"] != r1.ticket_id and new["status"] == "dispatched" and len(new["occurrences"]) == 1
    assert service.get_ticket(r1.ticket_id)["occurrence_count"] == 1
    with pytest.raises(ValueError, match="only this occurrence"):
        service.split_occurrence(occ["id"], "dispatcher")


def test_cleared_records_and_auto_closes(store, grids, alerts_cfg, redis_client, keys, clock, service):
    cats = [c.model_copy(update={"auto_close_on_clear": True}) if c.code == "0501" else c for c in alerts_cfg.categories]
    cfg = alerts_cfg.model_copy(update={"categories": cats})
    intake = Intake(store, grids, cfg, redis_client, keys, "c", clock=clock)
    off = intake.file(anomaly(kind="camera_offline", source_id="cam-office", zone=None, occurred_at=clock()))
    clock.advance(minutes=3)
    back = intake.file(anomaly(kind="camera_offline", source_id="cam-office", zone=None, state="cleared", occurred_at=clock()))
    assert back.cleared and back.ticket_id == off.ticket_id and back.status == "closed"
    t = service.get_ticket(off.ticket_id)
    assert t["cleared_at"] and [h["action"] for h in t["history"]][-2:] == ["clear", "auto_close"]
    # a category without auto-close only records the clearing
    sm = intake.file(anomaly(kind="smoke_alarm", source="sensor", source_id="smoke-0001", zone=None, at=CROSSING))
    c = intake.file(anomaly(kind="smoke_alarm", source="sensor", source_id="smoke-0001", zone=None, at=CROSSING, state="cleared"))
    assert c.cleared and c.status == "dispatched" and service.get_ticket(sm.ticket_id)["cleared_at"]
    nothing = intake.file(anomaly(kind="camera_offline", source_id="cam-never", zone=None, state="cleared"))
    assert nothing.cleared and nothing.ticket_id is None


def test_classification(intake, service):
    by_kind = intake.file(anomaly(kind="fire_smoke", source_id="cam-garages", zone=None))
    by_name = intake.file(anomaly(kind="whatever", category="0502", source="sensor", source_id="x1", zone=None, at=CROSSING))
    default = intake.file(anomaly(kind="unknown_kind", source_id="cam-q", zone=None, at=MARGIN))
    t1, t2, t3 = (service.get_ticket(r.ticket_id) for r in (by_kind, by_name, default))
    assert (t1["category"], t1["severity"], t1["police"]) == ("0301", "critical", True)
    assert t2["category"] == "0502"
    assert (t3["category"], t3["grid_code"], t3["routed_by"]) == ("0101", "330199", "fallback")


def test_stream_path_dead_letters_and_acks(intake, service, redis_client, keys):
    redis_client.xadd(keys.anomalies, {"anomaly": "not json"})
    redis_client.xadd(keys.anomalies, {"other": "field"})
    redis_client.xadd(keys.anomalies, {"anomaly": json.dumps({"kind": "x", "source": "camera"})})
    good = anomaly()
    publish_anomaly(redis_client, keys, good)
    assert intake.process_batch(block_ms=100) == 4
    dead = redis_client.xrange(keys.deadletter)
    assert len(dead) == 3 and all(f[b"source"] == b"intake" for _, f in dead)
    assert redis_client.xpending(keys.anomalies, INTAKE_GROUP)["pending"] == 0
    assert service.list_tickets().total == 1
    events = [f[b"type"] for _, f in redis_client.xrange(keys.events)]
    assert events == [b"ticket.created"]


def test_entries_of_a_dead_intake_consumer_are_reclaimed(store, grids, alerts_cfg, redis_client, keys, clock, service):
    dead = Intake(store, grids, alerts_cfg, redis_client, keys, "intake-dead", clock=clock, claim_idle_s=0.2)
    dead.ensure_group()
    publish_anomaly(redis_client, keys, anomaly())
    # the dead consumer read the entry and crashed before filing it
    got = redis_client.xreadgroup(INTAKE_GROUP, "intake-dead", {keys.anomalies: ">"}, count=10)
    assert len(got[0][1]) == 1
    alive = Intake(store, grids, alerts_cfg, redis_client, keys, "intake-alive", clock=clock, claim_idle_s=0.2)
    poll(lambda: alive.process_batch(block_ms=50) > 0, timeout=5)
    assert service.list_tickets().total == 1
    assert redis_client.xpending(keys.anomalies, INTAKE_GROUP)["pending"] == 0


def test_run_forever_files_until_stopped(intake, service, redis_client, keys):
    stop = threading.Event()
    th = threading.Thread(target=intake.run_forever, args=(stop, 50), daemon=True)
    th.start()
    try:
        for i in range(5):
            publish_anomaly(redis_client, keys, anomaly(source_id=f"cam-{i}"))
        poll(lambda: service.list_tickets().total == 5, timeout=10)
    finally:
        stop.set()
        th.join(timeout=5)
    assert not th.is_alive()


def test_crash_between_commit_and_publish_is_repaired(intake, service, redis_client, keys):
    a = anomaly()
    ref, _effects = intake._commit(a)                     # committed, but the duty XADD never happened
    assert redis_client.exists(keys.duty("330199001001001")) == 0
    publish_anomaly(redis_client, keys, a)                # the entry is delivered again
    intake.process_batch(block_ms=100)
    entries = redis_client.xrange(keys.duty("330199001001001"))
    assert [int(f[b"ticket_id"]) for _, f in entries] == [ref.ticket_id]


def test_one_key_alarm_gets_its_case_number_within_a_second(intake, redis_client, keys):
    import time

    t0 = time.perf_counter()
    ref = intake.file(anomaly(kind="one_key_alarm", source="alarm", source_id="stb-0001", zone=None))
    assert time.perf_counter() - t0 < 1.0
    assert ref.created and ref.number.startswith("QS20261124-")
    assert redis_client.xlen(keys.duty(ref.unit_code)) == 1


def test_case_numbers_are_sequential_per_day(intake, clock):
    n1 = intake.file(anomaly(source_id="a")).number
    n2 = intake.file(anomaly(source_id="b")).number
    clock.advance(days=1)
    n3 = intake.file(anomaly(source_id="c")).number
    assert (n1, n2, n3) == ("QS20261124-000001", "QS20261124-000002", "QS20261125-000001")
