"""The press filer: takes queued one-key alarms from the press stream and files them, surviving any crash.

A filer is one consumer of the group ``filers`` on ``{prefix}:presses`` (see
:mod:`ingest.devices.press_queue`). Its claim on a press is the stream's pending entry — a short lease:
an entry a filer took and did not acknowledge within ``lease_s`` (it died, it hung) is taken over by
any filer with XAUTOCLAIM, in this process after a restart or in another one. Each step:

1. read up to ``max_batch`` presses (the stale ones of dead filers first, then new ones);
2. a press whose ledger entry already holds a case was filed by a filer that died before its XACK:
   acknowledge it, file nothing;
3. file the rest with ``on_alarms(presses)`` — injected (the runtime's group commit into the case
   store); it must be idempotent by press, which the intake is: the anomaly id derives from the
   device and press id, so a press filed twice is one occurrence of one case, with its number;
4. record each case number in the ledger; send each MQTT press's case to its box with ``on_filed``
   (``received`` + case on ``…/ack``; the broker's PUBACK confirms it) — a press whose case could not be
   confirmed stays pending and is sent again after the lease, from the ledger, by whichever filer takes it;
5. XACK + XDEL, then publish the numbers on the ``filed`` channel, where the enqueueing side (any process)
   answers the boxes that wait on an HTTPS request.

A press whose filing failed stays pending and is retried after the lease; after ``max_deliveries``
tries it goes to ``on_dead`` (the dead-letter stream) and its ledger entry is released, so the box's
next retry queues it afresh. Nothing here imports the alerts package: filing is a callable.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from ingest.devices.alarms import case_ack
from ingest.devices.messages import AlarmPress
from ingest.devices.press_queue import FILER_GROUP, REPLY_MQTT, PressKeys, is_case, press_from_json
from ingest.failpoints import failpoint

log = logging.getLogger(__name__)

# One result per press, in order: the case number, None (not filed) or the exception that press met.
FileBatch = Callable[[list[AlarmPress]], "Sequence[str | None | BaseException]"]
OnDead = Callable[[str, str, bytes], None]  # (source, reason, payload)
# Send ``(device id, ack)`` to each box (MqttIngest.send_acks); the check it returns answers True once the broker
# confirmed every one, False when one cannot be, None while the confirmations are still on their way.
Confirmed = Callable[[], "bool | None"]
OnFiled = Callable[[list[tuple[str, dict[str, Any]]]], Confirmed]
Filed = tuple[Any, AlarmPress, str, str]  # (entry id, press, ledger key, case)


class PressFiler:
    """One filing consumer of the press stream; ``start()`` runs it in a thread, ``step()`` runs one batch."""

    def __init__(self, client: redis.Redis, prefix: str, on_alarms: FileBatch, *, consumer: str,
                 lease_s: float = 3.0, max_batch: int = 64, block_ms: int = 50, max_deliveries: int = 20,
                 dedup_s: float = 86400.0, on_dead: OnDead | None = None, on_filed: OnFiled | None = None,
                 name: str = "gw-press-filer") -> None:
        """``on_filed`` sends the case numbers of presses queued with ``reply`` ``mqtt`` to their boxes; without
        it (a process with no MQTT client) such presses are filed and left pending for a filer that has one."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._redis = client
        self.keys = PressKeys(prefix)
        self._on_alarms = on_alarms
        self.consumer = consumer
        self.lease_ms = max(100, int(lease_s * 1000))
        self.max_batch = max_batch
        self._block_ms = block_ms
        self._max_deliveries = max_deliveries
        self._ttl_ms = max(1000, int(dedup_s * 1000))
        self._on_dead = on_dead
        self.on_filed = on_filed
        self._unconfirmed: list[tuple[float, Confirmed, list[Filed]]] = []  # sent to boxes, not yet confirmed
        self._name = name
        self._reclaim_every = max(0.1, lease_s / 4)
        self._next_reclaim = 0.0
        self._cursor = "0-0"
        self._group_ready = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.batches = 0
        self.filed = 0
        self.reclaimed = 0
        self.already_filed = 0
        self.largest_batch = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the filing loop in a thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self.run_forever, args=(self._stop,), name=self._name, daemon=True)
                self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """End the loop after the batch in hand; what is still queued stays in the stream for the next filer."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except redis.RedisError as exc:  # Redis away: the presses wait in the stream; try again shortly
                log.warning("press filer %s: %s", self.consumer, exc)
                self._group_ready = False
                stop.wait(0.5)
        try:
            self._settle(2.0)  # the case acks on their way: confirmed ones leave the stream, not sent twice
        except redis.RedisError as exc:
            log.warning("press filer %s stopping: %s", self.consumer, exc)

    # -- one step -------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self._redis.xgroup_create(self.keys.stream, FILER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def step(self, block_ms: int | None = None) -> int:
        """Take one batch (stale presses of dead filers first) and file it; returns how many were taken."""
        self.ensure_group()
        self._settle()
        entries = self._reclaim()
        if not entries:
            reply = self._redis.xreadgroup(FILER_GROUP, self.consumer, {self.keys.stream: ">"}, count=self.max_batch,
                                           block=self._block_ms if block_ms is None else block_ms)
            entries = reply[0][1] if reply else []
        if entries:
            self._file(entries)
        return len(entries)

    def _reclaim(self) -> list[tuple[Any, dict]]:
        now = time.monotonic()
        if now < self._next_reclaim:
            return []
        self._next_reclaim = now + self._reclaim_every
        reply = self._redis.xautoclaim(self.keys.stream, FILER_GROUP, self.consumer, self.lease_ms,
                                       start_id=self._cursor, count=self.max_batch)
        cursor, claimed = reply[0], reply[1]
        self._cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        entries = [(eid, fields) for eid, fields in claimed if fields]
        if entries:
            self._next_reclaim = now  # more may be waiting: keep taking them before new ones
            self.reclaimed += len(entries)
            log.warning("press filer %s took over %d presses left by a filer that stopped", self.consumer, len(entries))
        return entries

    def _file(self, entries: list[tuple[Any, dict]]) -> None:
        items: list[tuple[Any, AlarmPress]] = []
        to_box: set[Any] = set()  # entries whose case the filer sends to the box (reply 'mqtt')
        for eid, fields in entries:
            raw = fields.get(b"press", fields.get("press"))
            if fields.get(b"reply", fields.get("reply")) in (REPLY_MQTT.encode(), REPLY_MQTT):
                to_box.add(eid)
            try:
                items.append((eid, press_from_json(raw)))
            except (TypeError, ValueError, KeyError) as exc:  # not a press GridWatch wrote: quarantine it
                self._dead(eid, None, f"unreadable press entry: {exc}", raw or b"")
        if not items:
            return
        keys = [self.keys.ledger_of(p) for _, p in items]
        pressed = [self.keys.ledger(p.device_id, "press", p.press_id) for _, p in items]
        values = self._redis.mget(keys + pressed)
        known, pressed_values = values[:len(items)], values[len(items):]
        done: list[Filed] = []
        todo: list[tuple[Any, AlarmPress, str]] = []
        for (eid, press), key, value, press_value in zip(items, keys, known, pressed_values):
            if is_case(value):  # filed and recorded by a filer that died before acknowledging it
                done.append((eid, press, key, value.decode()))
                continue
            if press.kind == "cancel" and press.case is None and is_case(press_value):
                press = AlarmPress(press.device_id, press.press_id, press.kind, press.reason, press.at,
                                   press.received_at, press_value.decode(), press.raw)
            todo.append((eid, press, key))
        self.already_filed += len(done)
        failpoint("press.after_claim")
        results = self._call([p for _, p, _ in todo])
        failpoint("press.after_commit")
        failed: list[tuple[Any, AlarmPress, str, BaseException | None]] = []
        newly: list[Filed] = []
        for (eid, press, key), result in zip(todo, results):
            recorded = _recorded(press, result)
            if recorded is None:
                failed.append((eid, press, key, result if isinstance(result, BaseException) else None))
            else:
                newly.append((eid, press, key, recorded))
        if newly:
            pipe = self._redis.pipeline(transaction=False)
            for _, _, key, case in newly:
                pipe.set(key, case.encode(), px=self._ttl_ms)
            pipe.execute()
            failpoint("press.after_ledger")
        self._acknowledge(self._tell_boxes(done + newly, to_box))
        self._settle()
        for eid, press, key, exc in failed:
            self._retry_or_dead(eid, press, key, exc)
        self.batches += 1
        self.filed += len(newly)
        self.largest_batch = max(self.largest_batch, len(todo))

    def _call(self, presses: list[AlarmPress]) -> list[str | None | BaseException]:
        if not presses:
            return []
        try:
            results = list(self._on_alarms(presses))
            if len(results) != len(presses):
                raise RuntimeError(f"on_alarms returned {len(results)} results for {len(presses)} presses")
            return results
        except Exception as exc:  # intake down: nothing acknowledged, the presses are retried after the lease
            log.exception("filing a batch of %d queued presses failed", len(presses))
            return [exc] * len(presses)

    def _tell_boxes(self, filed: list[Filed], to_box: set[Any]) -> list[Filed]:
        """Send the MQTT presses' cases to their boxes; returns what may leave the stream now. The sent ones leave
        it once the broker confirmed their acks (``_settle``, without holding up the next batch); unconfirmed ones
        stay pending and the filer that takes them after the lease sends the case again from the ledger — a box
        may get its case twice, never not at all."""
        mine = [f for f in filed if f[0] in to_box]
        if not mine:
            return filed
        if self.on_filed is None:
            log.warning("press filer %s has no MQTT client: %d case numbers left to a filer that has one",
                        self.consumer, len(mine))
        else:
            try:
                check = self.on_filed([(press.device_id, case_ack(press, "received", case)) for _, press, _, case in mine])
                # confirmed within most of the lease, or the press is taken again (and its case sent again)
                self._unconfirmed.append((time.monotonic() + 0.8 * self.lease_ms / 1000, check, mine))
            except Exception:
                log.exception("sending %d case numbers to their boxes failed", len(mine))
        return [f for f in filed if f[0] not in to_box]

    def _settle(self, wait_s: float = 0.0) -> None:
        """Take the presses whose case acks the broker confirmed off the stream (waiting up to ``wait_s``)."""
        deadline = time.monotonic() + wait_s
        while self._unconfirmed:
            keep = []
            for expires, check, filed in self._unconfirmed:
                try:
                    confirmed = check()
                except Exception:  # noqa: BLE001 - treated as not confirmed
                    confirmed = False
                if confirmed:
                    self._acknowledge(filed)
                elif confirmed is None and time.monotonic() < expires:
                    keep.append((expires, check, filed))
                else:
                    log.warning("press filer %s: %d case acks not confirmed by the broker; sent again after the lease",
                                self.consumer, len(filed))
            self._unconfirmed = keep
            if not keep or time.monotonic() >= deadline:
                return
            time.sleep(0.01)  # bounded by wait_s: a stopping filer lets the last confirmations arrive

    def _acknowledge(self, filed: list[Filed]) -> None:
        if not filed:
            return
        ids = [eid for eid, _, _, _ in filed]
        pipe = self._redis.pipeline(transaction=False)
        pipe.xack(self.keys.stream, FILER_GROUP, *ids)
        pipe.xdel(self.keys.stream, *ids)
        pipe.execute()
        # apart from the pipeline: a Redis Cluster pipeline refuses PUBLISH (a waiter that misses it reads the ledger)
        self._redis.publish(self.keys.filed_channel, json.dumps([[key, case] for _, _, key, case in filed], ensure_ascii=False))

    def _retry_or_dead(self, eid: Any, press: AlarmPress, key: str, exc: BaseException | None) -> None:
        info = self._redis.xpending_range(self.keys.stream, FILER_GROUP, min=eid, max=eid, count=1)
        tries = int(info[0]["times_delivered"]) if info else 1
        if tries < self._max_deliveries:
            return  # stays pending: reclaimed and filed again once its lease ran out
        reason = f"not filed after {tries} tries: {type(exc).__name__ if exc else 'no case number'}"
        self._redis.delete(key)  # the box's next retry queues the press afresh
        self._dead(eid, press, reason, json.dumps({"device": press.device_id, "press_id": press.press_id,
                                                   "kind": press.kind}).encode())

    def _dead(self, eid: Any, press: AlarmPress | None, reason: str, payload: bytes | str) -> None:
        log.error("press entry %s dead-lettered: %s", eid, reason)
        if self._on_dead is not None:
            try:
                self._on_dead("press-filer", reason, payload if isinstance(payload, bytes) else str(payload).encode())
            except Exception:
                log.exception("dead-lettering press entry %s failed", eid)
        pipe = self._redis.pipeline(transaction=False)
        pipe.xack(self.keys.stream, FILER_GROUP, eid)
        pipe.xdel(self.keys.stream, eid)
        pipe.execute()

    def stats(self) -> dict[str, int]:
        return {"batches": self.batches, "filed": self.filed, "reclaimed": self.reclaimed,
                "already_filed": self.already_filed, "largest_batch": self.largest_batch}


def _recorded(press: AlarmPress, result: "str | None | BaseException") -> str | None:
    """The case to record for a filing result; None when the press was not filed (retry it)."""
    if isinstance(result, BaseException):
        return None
    if press.kind == "cancel":
        return str(result or press.case or "-")
    return str(result) if result else None
