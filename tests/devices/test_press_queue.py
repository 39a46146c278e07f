"""The durable press queue and its filers on the real Redis: queued before anything else, a short lease,
a dead filer's presses taken over, the box's retry answered with the same case, exactly one filing.

The filing callable here is a small idempotent case book (pure logic, as the intake is idempotent by
press); the real intake behind it is exercised by tests/devices/test_alarm_burst.py and the kill-point
tests in tests/fault/test_press_kill.py.
"""
from __future__ import annotations

import threading
import time

import pytest
import redis

from ingest.devices.messages import AlarmPress
from ingest.devices.press_filer import PressFiler
from ingest.devices.press_queue import FILER_GROUP, PressKeys, PressQueue, is_case

from .conftest import poll

pytestmark = pytest.mark.timeout(60)


def _press(i: int, kind: str = "press", device: str | None = None) -> AlarmPress:
    now = time.time()
    return AlarmPress(device or f"stb-{i}", f"p-{i}", kind, "误按" if kind == "cancel" else None, now, now, None, {})


class CaseBook:
    """Files presses like the intake does: one case per (device, press id), whatever the number of calls."""

    def __init__(self) -> None:
        self.cases: dict[tuple[str, str], str] = {}
        self.calls: list[list[str]] = []
        self.down = False
        self.lock = threading.Lock()

    def __call__(self, presses: list[AlarmPress]) -> list[str]:
        if self.down:
            raise ConnectionError("case store down")
        with self.lock:
            self.calls.append([p.press_id for p in presses])
            out = []
            for p in presses:
                if p.kind == "cancel":
                    out.append(p.case)
                    continue
                out.append(self.cases.setdefault((p.device_id, p.press_id), f"QS-{len(self.cases) + 1:04d}"))
            return out

    def filings_of(self, press_id: str) -> int:
        return sum(batch.count(press_id) for batch in self.calls)


def _running(q: PressQueue):
    q.start()
    yield q
    q.stop()


@pytest.fixture
def queue(redis_client, stream_prefix):
    yield from _running(PressQueue(redis_client, stream_prefix, wait_s=2.0))


@pytest.fixture
def patient_queue(redis_client, stream_prefix):
    """A queue that waits long enough for a case on a loaded 2-core machine (2 s gave ``pending`` there)."""
    yield from _running(PressQueue(redis_client, stream_prefix, wait_s=15.0))


def test_a_press_is_on_the_stream_before_it_is_filed_and_the_retry_gets_its_case(patient_queue, redis_client,
                                                                                  stream_prefix):
    queue = patient_queue
    keys = PressKeys(stream_prefix)
    queued, entry = queue.enqueue(_press(1))
    assert queued and redis_client.xlen(keys.stream) == 1                     # durable before any filer saw it
    assert redis_client.get(keys.ledger("stb-1", "press", "p-1")) == f"q:{entry}".encode()
    assert redis_client.pttl(keys.ledger("stb-1", "press", "p-1")) > 86_000_000  # the dedup window, not a claim
    book = CaseBook()
    filer = PressFiler(redis_client, stream_prefix, book, consumer="filer-a")
    assert filer.step(block_ms=10) == 1
    assert redis_client.get(keys.ledger("stb-1", "press", "p-1")) == b"QS-0001"
    assert redis_client.xlen(keys.stream) == 0 and redis_client.xpending(keys.stream, FILER_GROUP)["pending"] == 0
    filer.start()
    try:
        assert queue.file(_press(1)) | {"server_time": 0} == {"press_id": "p-1", "kind": "press", "status": "duplicate",
                                                             "case": "QS-0001", "server_time": 0}
        ack = queue.file(_press(2))
        assert (ack["status"], ack["case"]) == ("received", "QS-0002")
    finally:
        filer.stop()
    assert book.filings_of("p-1") == 1 and book.filings_of("p-2") == 1


def test_a_press_whose_filer_died_is_filed_by_another_after_the_lease(queue, redis_client, stream_prefix):
    keys = PressKeys(stream_prefix)
    book = CaseBook()
    dead = PressFiler(redis_client, stream_prefix, book, consumer="filer-dead", lease_s=0.5)
    dead.ensure_group()
    for i in range(5):
        queue.enqueue(_press(i))
    # filer-dead takes the five presses (its claim) and dies before filing them
    taken = redis_client.xreadgroup(FILER_GROUP, "filer-dead", {keys.stream: ">"}, count=10)
    assert len(taken[0][1]) == 5
    answers: dict[str, dict] = {}
    queue.submit(_press(3), lambda ack: answers.setdefault("retry", ack))      # the box retries meanwhile
    survivor = PressFiler(redis_client, stream_prefix, book, consumer="filer-b", lease_s=0.5)
    started = time.monotonic()
    survivor.start()
    try:
        poll(lambda: all((redis_client.get(keys.ledger(f"stb-{i}", "press", f"p-{i}")) or b"").startswith(b"QS")
                         for i in range(5)), 10, what="the dead filer's presses filed")
        took = time.monotonic() - started
        poll(lambda: "retry" in answers, 5, what="the retry answered")
    finally:
        survivor.stop()
    assert took >= 0.4                                      # not before the lease ran out …
    assert survivor.reclaimed == 5                          # … and by taking over the dead filer's claim
    assert (answers["retry"]["status"], answers["retry"]["case"]) == ("duplicate", book.cases[("stb-3", "p-3")])
    assert sorted(book.cases) == sorted((f"stb-{i}", f"p-{i}") for i in range(5))
    assert all(book.filings_of(f"p-{i}") == 1 for i in range(5))
    assert redis_client.xpending(keys.stream, FILER_GROUP)["pending"] == 0


def test_a_press_filed_but_not_recorded_is_recorded_once_with_the_same_case(queue, redis_client, stream_prefix):
    """The filer died after the case store committed and before the ledger: the next filer files it again,
    the idempotent store answers the same case, and the box's retry gets that number."""
    keys = PressKeys(stream_prefix)
    book = CaseBook()
    queue.enqueue(_press(7))
    redis_client.xgroup_create(keys.stream, FILER_GROUP, id="0", mkstream=True)
    redis_client.xreadgroup(FILER_GROUP, "filer-dead", {keys.stream: ">"}, count=1)
    first_case = book([_press(7)])[0]                      # committed by the dead filer, never recorded
    survivor = PressFiler(redis_client, stream_prefix, book, consumer="filer-b", lease_s=0.2)
    poll(lambda: survivor.step(block_ms=10) is not None and is_case(redis_client.get(keys.ledger("stb-7", "press", "p-7"))),
         5, what="the press recorded")
    assert redis_client.get(keys.ledger("stb-7", "press", "p-7")).decode() == first_case
    assert len(book.cases) == 1
    assert queue.file(_press(7))["case"] == first_case


def test_a_press_recorded_but_not_acknowledged_is_not_filed_again(queue, redis_client, stream_prefix):
    keys = PressKeys(stream_prefix)
    book = CaseBook()
    queue.enqueue(_press(8))
    redis_client.xgroup_create(keys.stream, FILER_GROUP, id="0", mkstream=True)
    redis_client.xreadgroup(FILER_GROUP, "filer-dead", {keys.stream: ">"}, count=1)
    redis_client.set(keys.ledger("stb-8", "press", "p-8"), b"QS-0099")  # recorded, then the filer died
    survivor = PressFiler(redis_client, stream_prefix, book, consumer="filer-b", lease_s=0.2)
    poll(lambda: survivor.step(block_ms=10) and redis_client.xpending(keys.stream, FILER_GROUP)["pending"] == 0, 5,
         what="the entry acknowledged")
    assert book.calls == [] and survivor.already_filed == 1


def test_filing_failures_keep_the_press_until_the_store_is_back(queue, redis_client, stream_prefix):
    keys = PressKeys(stream_prefix)
    book = CaseBook()
    book.down = True
    filer = PressFiler(redis_client, stream_prefix, book, consumer="filer-a", lease_s=0.3)
    filer.start()
    try:
        ack = queue.file(_press(1), timeout_s=5)
        assert (ack["status"], ack["case"]) == ("pending", None)               # accepted, queued, not lost
        assert redis_client.xpending(keys.stream, FILER_GROUP)["pending"] == 1
        book.down = False
        poll(lambda: redis_client.xlen(keys.stream) == 0, 10, what="filed once the store is back")
    finally:
        filer.stop()
    assert queue.file(_press(1))["case"] == "QS-0001" and len(book.cases) == 1


def test_a_press_that_never_files_is_dead_lettered_and_released(queue, redis_client, stream_prefix):
    keys = PressKeys(stream_prefix)
    dead: list[tuple[str, str, bytes]] = []
    filer = PressFiler(redis_client, stream_prefix, lambda presses: [None] * len(presses), consumer="filer-a",
                       lease_s=0.1, max_deliveries=3, on_dead=lambda *a: dead.append(a))
    queue.enqueue(_press(1))
    poll(lambda: filer.step(block_ms=10) is not None and dead, 10, what="dead-lettered")
    assert dead[0][0] == "press-filer" and "not filed after 3 tries" in dead[0][1] and b'"p-1"' in dead[0][2]
    assert redis_client.get(keys.ledger("stb-1", "press", "p-1")) is None   # the box's retry may queue it again
    assert redis_client.xlen(keys.stream) == 0
    assert queue.enqueue(_press(1))[0] is True


def test_a_cancel_gets_the_case_of_the_press_it_cancels(queue, redis_client, stream_prefix):
    book = CaseBook()
    filer = PressFiler(redis_client, stream_prefix, book, consumer="filer-a")
    filer.start()
    try:
        case = queue.file(_press(5))["case"]
        ack = queue.file(_press(5, "cancel"))
    finally:
        filer.stop()
    assert (ack["status"], ack["case"], ack["reason"]) == ("cancelled", case, "误按")


def test_redis_down_the_box_is_told_to_retry(stream_prefix):
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)   # nothing listens on port 1
    q = PressQueue(client, stream_prefix)
    acks: list[dict] = []
    q.submit(_press(1), acks.append)
    assert acks and (acks[0]["status"], acks[0]["retry"], acks[0]["error"]) == ("error", True, "queue_unavailable")
    assert q.waiting == 0
    q.stop()


def test_the_queueing_and_the_filing_side_share_nothing_but_redis(redis_client, stream_prefix):
    """The API side queues and the devices side files, each on its own connection (the fault tests run them as
    separate processes)."""
    kw = redis_client.connection_pool.connection_kwargs
    api_client = redis.Redis(host=kw["host"], port=kw["port"], db=kw.get("db", 0))
    api = PressQueue(api_client, stream_prefix, wait_s=3.0)
    book = CaseBook()
    filer = PressFiler(redis_client, stream_prefix, book, consumer="devices-1")
    filer.start()
    try:
        acks = [api.file(_press(i)) for i in range(10)]
    finally:
        filer.stop()
        api.stop()
        api_client.close()
    assert [a["status"] for a in acks] == ["received"] * 10
    assert [a["case"] for a in acks] == [book.cases[(f"stb-{i}", f"p-{i}")] for i in range(10)]
