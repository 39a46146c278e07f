"""Group commit of one-key alarms: the AlarmBatcher's contract (claim once, answer after the batch, release
and ask for a retry on failure, file what is queued at stop), and a burst of presses from many boxes through
the real Mosquitto into the real SQLite case intake via ``Intake.file_many`` — every press acked with its case.
Timing is the benchmark's business (benchmarks/bench_devices.py), not these tests'."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from detectors.sensor_rules import alarm_anomaly
from ingest.config import MqttConfig
from ingest.devices import DeviceRegistry, MemoryPressLedger, MqttIngest, PressKeys, PressLedger, RedisNonceStore
from ingest.devices.alarms import AlarmBatcher
from ingest.devices.messages import AlarmPress
from ingest.simulator import BoxFleet, simulated_devices

from .conftest import MQTT_URL, poll

pytestmark = pytest.mark.timeout(90)



def _press(i: int, kind: str = "press") -> AlarmPress:
    now = time.time()
    return AlarmPress(f"stb-{i}", f"p-{i}", kind, None, now, now, None, {})


class Acks:
    def __init__(self) -> None:
        self.got: dict[str, dict] = {}
        self.lock = threading.Lock()

    def __call__(self, ack: dict) -> None:
        with self.lock:
            self.got[ack["press_id"]] = ack


def test_batcher_files_waiting_presses_together_and_answers_each():
    gate = threading.Event()
    calls: list[list[str]] = []

    def on_alarms(presses):
        gate.wait(10)                       # hold the first batch so the others queue up behind it
        calls.append([p.press_id for p in presses])
        return [f"C-{p.press_id}" for p in presses]

    ledger = MemoryPressLedger()
    batcher = AlarmBatcher(ledger, on_alarms, max_batch=8, max_wait_s=0.0)
    acks = Acks()
    try:
        for i in range(20):
            batcher.submit(_press(i), acks)
        batcher.submit(_press(3), acks)     # a repeat while its twin is queued: answered at once, not filed again
        assert acks.got["p-3"]["status"] == "pending"
        gate.set()
        poll(lambda: len(acks.got) == 20, 10, what="every press answered")
    finally:
        batcher.stop()
    assert sorted(p for batch in calls for p in batch) == sorted(f"p-{i}" for i in range(20))
    assert max(len(b) for b in calls) == 8 and len(calls) < 20          # grouped, at most max_batch each
    assert all(acks.got[f"p-{i}"] == {**acks.got[f"p-{i}"], "status": "received", "case": f"C-p-{i}"} for i in range(20))
    assert ledger.begin("stb-3", "press", "p-3") == (False, "C-p-3")    # the ledger remembers the case


def test_batcher_failure_releases_the_claim_and_a_retry_passes():
    state = {"down": True}

    def on_alarms(presses):
        if state["down"]:
            raise ConnectionError("store down")
        return [None if p.press_id == "p-1" else "C-1" for p in presses]

    ledger = MemoryPressLedger()
    batcher = AlarmBatcher(ledger, on_alarms, max_wait_s=0.0)
    try:
        ack = batcher.file(_press(0))
        assert (ack["status"], ack["retry"], ack["error"]) == ("error", True, "ConnectionError")
        state["down"] = False
        assert batcher.file(_press(0))["status"] == "received"             # the claim was released
        assert batcher.file(_press(1))["error"] == "not_filed"             # None for a press: not filed, retry
    finally:
        batcher.stop()
    refused = batcher.file(_press(2))                                      # after stop: refused, never lost
    assert refused["status"] == "error" and refused["retry"] is True
    assert ledger.begin("stb-2", "press", "p-2") == (True, None)


def test_stop_files_what_is_queued():
    gate = threading.Event()
    filed: list[str] = []

    def on_alarms(presses):
        gate.wait(10)
        filed.extend(p.press_id for p in presses)
        return ["C" for _ in presses]

    batcher = AlarmBatcher(MemoryPressLedger(), on_alarms, max_batch=4, max_wait_s=0.0)
    acks = Acks()
    for i in range(10):
        batcher.submit(_press(i), acks)
    threading.Timer(0.2, gate.set).start()
    batcher.stop()
    assert sorted(filed) == sorted(f"p-{i}" for i in range(10)) and len(acks.got) == 10


def test_burst_of_presses_through_mosquitto_into_sqlite_every_one_acked_with_a_case(sqlite_intake, redis_client,
                                                                                     stream_prefix, dead_letters):
    n = 150
    boxes = simulated_devices(0, n, seed=f"burst-{uuid.uuid4().hex[:6]}", spread_deg=0.004)  # close: many merge
    registry = DeviceRegistry(boxes)
    intake = sqlite_intake
    calls: list[int] = []

    def on_alarms(presses):
        calls.append(len(presses))
        refs = intake.file_many([alarm_anomaly(p, registry.get(p.device_id), []) for p in presses], return_exceptions=True)
        return [r if isinstance(r, BaseException) else r.number for r in refs]

    tag = uuid.uuid4().hex[:10]
    cfg = MqttConfig(topic_prefix=f"gwtest/{tag}/v1", client_id=f"gwtest-burst-{tag}", shared_group=None, session_expiry_s=60)
    ing = MqttIngest(MQTT_URL, cfg, registry, lambda r: None, None, dead_letters,
                     nonce_store=RedisNonceStore(redis_client, stream_prefix), ledger=PressLedger(redis_client, stream_prefix),
                     on_alarms=on_alarms)
    ing.start()
    fleet = BoxFleet(MQTT_URL, boxes, topic_prefix=cfg.topic_prefix, connections=4, ack_timeout_s=20.0)
    fleet.start()
    try:
        records = [fleet.press(b.id, f"burst-{i}") for i, b in enumerate(boxes)]
        report = fleet.wait(deadline_s=60, retries=0)
        assert report.acked == n and report.statuses == {"received": n}, report.statuses
        assert all(r.case and r.case.startswith("QS") for r in records)
        # the cases the boxes were told are exactly the tickets in the store, and merged presses share theirs
        stats = intake.stats
        assert stats["filed"] == n and stats["created"] + stats["merged"] == n
        assert len({r.case for r in records}) == stats["created"]
        assert sum(calls) == n
        # the same presses again (boxes retrying): the ledger answers with the same cases, nothing is filed twice
        again = [fleet.press(b.id, f"burst-{i}") for i, b in enumerate(boxes[:20])]
        fleet.wait(deadline_s=30, retries=0)
        assert [(r.status, r.case) for r in again] == [("duplicate", rec.case) for rec in records[:20]]
        assert intake.stats["filed"] == n
    finally:
        fleet.stop()
        ing.stop()
    assert ing.stats()["press_received"] == n


def test_burst_through_the_durable_press_queue_every_box_gets_its_case_once(sqlite_intake, redis_client, stream_prefix,
                                                                            dead_letters):
    """The runtime's path: MQTT → PressQueue (Redis stream) → ``queued`` to the box → PressFiler →
    ``Intake.file_many`` → ``received`` + case to the box (sent by the filer)."""
    from ingest.devices import PressFiler, PressQueue

    n = 300
    boxes = simulated_devices(0, n, seed=f"durable-{uuid.uuid4().hex[:6]}", spread_deg=0.004)
    registry = DeviceRegistry(boxes)
    intake = sqlite_intake

    def on_alarms(presses):
        refs = intake.file_many([alarm_anomaly(p, registry.get(p.device_id), []) for p in presses], return_exceptions=True)
        return [r if isinstance(r, BaseException) else r.number for r in refs]

    queue = PressQueue(redis_client, stream_prefix, wait_s=20.0)   # correctness here; timing is the benchmark's
    filer = PressFiler(redis_client, stream_prefix, on_alarms, consumer="burst-filer")
    tag = uuid.uuid4().hex[:10]
    cfg = MqttConfig(topic_prefix=f"gwtest/{tag}/v1", client_id=f"gwtest-durable-{tag}", shared_group=None, session_expiry_s=60)
    ing = MqttIngest(MQTT_URL, cfg, registry, lambda r: None, None, dead_letters,
                     nonce_store=RedisNonceStore(redis_client, stream_prefix), alarm_sink=queue)
    filer.on_filed = ing.send_acks  # as the runtime wires it
    queue.start()
    filer.start()
    ing.start()
    fleet = BoxFleet(MQTT_URL, boxes, topic_prefix=cfg.topic_prefix, connections=4, ack_timeout_s=30.0)
    fleet.start()
    try:
        records = [fleet.press(b.id, f"durable-{i}") for i, b in enumerate(boxes)]
        report = fleet.wait(deadline_s=60, retries=0)
        assert report.acked == n and report.statuses == {"received": n}, report.statuses
        # every box was told 'queued' before (or, at the latest, when) its case came
        assert all(r.first_at is not None and r.first_at <= r.acked_at for r in records)
        assert ing.stats().get("press_queued") == n
        assert intake.stats["filed"] == n and len({r.case for r in records}) == intake.stats["created"]
        again = [fleet.press(b.id, f"durable-{i}") for i, b in enumerate(boxes[:20])]
        fleet.wait(deadline_s=30, retries=0)
        # What the box needs: its own case number back and no second case, answered from the ledger at once.
        assert [(r.status, r.case) for r in again] == [("duplicate", rec.case) for rec in records[:20]]
        assert intake.stats["filed"] == n                                      # the repeats filed nothing
        print(f"durable burst of {n}: p50 {report.percentile(0.5) * 1000:.0f} ms, p99 {report.percentile(0.99) * 1000:.0f} ms,"
              f" {filer.batches} batches, largest {filer.largest_batch}")
    finally:
        fleet.stop()
        ing.stop()
        filer.stop()
        queue.stop()
    assert redis_client.xlen(PressKeys(stream_prefix).stream) == 0
