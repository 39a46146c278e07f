"""The MQTT press protocol on the durable queue: ``queued`` at once, then the case sent by the filer that files it.

What a resident's box must get: a fast ``queued`` (the alarm can no longer be lost) and, later, its case number
on the same press id — even when the first attempt to send that case was not confirmed by the broker (the
filer's process died, the broker was away): the press stays on the stream and the next filer sends the case
again from the ledger, without filing it twice. Real Redis; the box side is a recorder of what the filer sends
(the real broker path is tests/devices/test_alarm_burst.py and tests/roles/test_supervisor.py).
"""
from __future__ import annotations

import pytest

from ingest.devices.press_filer import PressFiler
from ingest.devices.press_queue import FILER_GROUP, PressKeys, PressQueue

from .conftest import poll
from .test_press_queue import CaseBook, _press

pytestmark = pytest.mark.timeout(60)


class Boxes:
    """What the filer sends to the boxes; ``confirm`` is what the broker says about it (None: no PUBACK yet)."""

    def __init__(self, confirm: bool | None) -> None:
        self.confirm = confirm
        self.sent: list[tuple[str, dict]] = []

    def __call__(self, acks: list[tuple[str, dict]]):
        self.sent += acks
        return lambda: self.confirm


def test_queued_at_once_then_the_case_from_the_filer_and_again_when_not_confirmed(redis_client, stream_prefix):
    keys = PressKeys(stream_prefix)
    queue = PressQueue(redis_client, stream_prefix)
    acks = queue.accept_many([_press(1), _press(2)])
    assert [(a["press_id"], a["status"], a["case"]) for a in acks] == [("p-1", "queued", None), ("p-2", "queued", None)]
    assert redis_client.xlen(keys.stream) == 2

    book = CaseBook()
    lost = Boxes(confirm=None)  # sent, never confirmed: the filer's process dies before the PUBACKs come
    first = PressFiler(redis_client, stream_prefix, book, consumer="filer-a", lease_s=0.3, on_filed=lost)
    assert first.step(block_ms=10) == 2
    cases = {"p-1": book.cases[("stb-1", "p-1")], "p-2": book.cases[("stb-2", "p-2")]}
    assert sorted((d, a["press_id"], a["status"], a["case"]) for d, a in lost.sent) == [
        ("stb-1", "p-1", "received", cases["p-1"]), ("stb-2", "p-2", "received", cases["p-2"])]
    assert redis_client.xlen(keys.stream) == 2  # not confirmed: still on the stream, still pending

    boxes = Boxes(confirm=True)
    second = PressFiler(redis_client, stream_prefix, book, consumer="filer-b", lease_s=0.3, on_filed=boxes)
    # after the lease it takes them over, finds their cases in the ledger, sends them, and they leave the stream
    poll(lambda: second.step(block_ms=10) >= 0 and redis_client.xlen(keys.stream) == 0, 10, what="the presses taken over")
    assert sorted((a["press_id"], a["case"]) for _, a in boxes.sent) == sorted(cases.items())  # the case again
    assert book.filings_of("p-1") == book.filings_of("p-2") == 1                              # filed once
    assert redis_client.xpending(keys.stream, FILER_GROUP)["pending"] == 0

    # the box's retry of a filed press: its case at once, nothing queued
    again = queue.accept_many([_press(1)])[0]
    assert (again["status"], again["case"]) == ("duplicate", cases["p-1"]) and redis_client.xlen(keys.stream) == 0


def test_a_cancel_over_mqtt_is_answered_cancelled_with_the_case_it_cancels(redis_client, stream_prefix):
    queue = PressQueue(redis_client, stream_prefix)
    book = CaseBook()
    boxes = Boxes(confirm=True)
    filer = PressFiler(redis_client, stream_prefix, book, consumer="filer-a", on_filed=boxes)
    queue.accept_many([_press(7)])
    filer.step(block_ms=10)
    assert queue.accept_many([_press(7, "cancel")])[0]["status"] == "queued"
    filer.step(block_ms=10)
    _, ack = boxes.sent[-1]
    assert (ack["press_id"], ack["status"], ack["case"], ack["reason"]) == ("p-7", "cancelled", book.cases[("stb-7", "p-7")], "误按")


def test_a_batch_of_presses_claims_its_nonces_in_order_and_a_repeated_nonce_is_a_replay(redis_client, stream_prefix):
    from ingest.devices.signing import MemoryNonceStore, RedisNonceStore

    claims = [("stb-1", "nonce-aaaa", 60.0), ("stb-2", "nonce-aaaa", 60.0), ("stb-1", "nonce-aaaa", 60.0),
              ("stb-1", "nonce-bbbb", 60.0)]
    # the same nonce from another box is that box's own; the same box's second use of it is a replay
    assert RedisNonceStore(redis_client, stream_prefix).claim_many(claims) == [True, True, False, True]
    assert RedisNonceStore(redis_client, stream_prefix).claim_many(claims[:1]) == [False]  # and later too
    assert MemoryNonceStore().claim_many(claims) == [True, True, False, True]
