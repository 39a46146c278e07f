"""One-key alarm (一键报警) handling shared by the MQTT path and the gateway's HTTPS endpoint.

The runtime files presses through the durable queue (:mod:`ingest.devices.press_queue` and
:mod:`ingest.devices.press_filer`): verified → on a Redis stream → filed by a filer under a short lease.
The in-memory :class:`AlarmBatcher` and :func:`process_press` below remain for embedding without that
queue (and as the benchmark's comparison); their ledger claim is lost with the process.

A verified press is turned into an :class:`AlarmPress`, de-duplicated by its ``press_id`` through
the :class:`PressLedger` (a retry, a redelivery or a double submit gets the case number of the first),
handed to ``on_alarm`` — the runtime's synchronous intake, which files the case and returns its
number — and answered with an ack the box can show: "received, case number …".

A cancel (误按) names the ``press_id`` it cancels; the ledger supplies the case number of that press,
so the runtime can mark the case cancelled with the resident's reason.

If ``on_alarm`` fails, the ledger entry and the nonce are released and the box is told ``error``
with ``retry: true``: nothing was filed, so a retry must be able to pass.

Bursts (an incident makes a whole building press within a second) go through the
:class:`AlarmBatcher`: presses are verified and claimed in the ledger on arrival, queued, and one
filing worker hands everything waiting (up to ``max_batch``, waiting at most ``max_wait_s`` for more)
to ``on_alarms(list[AlarmPress]) -> list[case | None | Exception]`` — the runtime's group commit, one
SQL transaction for the whole batch — and answers every box as soon as that batch committed.
"""
from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from ingest.devices import metrics
from ingest.devices.messages import AlarmPress
from ingest.devices.registry import DeviceRegistry
from ingest.devices.signing import DEFAULT_WINDOW_S, NonceStore, SignatureError, verify_signed
from ingest.redis_connect import hash_tag

log = logging.getLogger(__name__)

_PRESS_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_REASON = 200

OnAlarm = Callable[[AlarmPress], "str | None"]
# One result per press, in order: the case number, None (not filed: the box retries) or the exception that press met.
OnAlarms = Callable[[list[AlarmPress]], "Sequence[str | None | BaseException]"]
OnAck = Callable[[dict[str, Any]], None]
OnReject = Callable[[str, str, bytes], None]


class PressError(ValueError):
    """The signed body is authentic but not a usable press (reason ``invalid_payload``)."""

    reason = "invalid_payload"


def parse_press(doc: Mapping[str, Any], received_at: float) -> AlarmPress:
    """A verified body → AlarmPress. ``{"device", "press_id", "kind": "press"|"cancel", "reason", "at"}``."""
    device = doc.get("device")
    press_id = doc.get("press_id")
    kind = doc.get("kind", "press")
    reason = doc.get("reason")
    at = doc.get("at", doc.get("ts", received_at))
    if not isinstance(device, str) or not device:
        raise PressError("device must be a string")
    if not isinstance(press_id, str) or not _PRESS_ID.match(press_id):
        raise PressError("press_id must be 1-64 characters of [A-Za-z0-9_.:-]")
    if kind not in ("press", "cancel"):
        raise PressError("kind must be 'press' or 'cancel'")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise PressError(f"reason must be a string of at most {MAX_REASON} characters")
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise PressError("at must be Unix seconds")
    raw = {k: v for k, v in doc.items() if not k.startswith("_")}
    return AlarmPress(device, press_id, kind, reason, float(at), received_at, None, raw)


class PressLedger:
    """Which presses were already filed, under which case: ``{prefix}:press:{device}:{kind}:{press_id}``.

    ``begin`` claims a press (SET NX, empty value) before filing; ``finish`` stores the case number;
    a concurrent duplicate waits briefly for it. In Redis so every ingest worker and the gateway agree.
    """

    def __init__(self, client: redis.Redis, prefix: str = "gw", ttl_s: float = 86400.0) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = max(1000, int(ttl_s * 1000))

    def _key(self, device_id: str, kind: str, press_id: str) -> str:
        return f"{hash_tag(self._prefix)}:press:{device_id}:{kind}:{press_id}"

    def begin(self, device_id: str, kind: str, press_id: str, wait_s: float = 0.8) -> tuple[bool, str | None]:
        """``(True, None)`` when this caller must file the press; ``(False, case)`` for a repeat."""
        key = self._key(device_id, kind, press_id)
        if self._redis.set(key, b"", nx=True, px=self._ttl_ms):
            return True, None
        deadline = time.monotonic() + wait_s
        while True:
            value = self._redis.get(key)
            if value is None:  # the first attempt failed and released it: this one files
                if self._redis.set(key, b"", nx=True, px=self._ttl_ms):
                    return True, None
            elif value:
                return False, value.decode()
            if time.monotonic() >= deadline:
                return False, None  # still being filed by someone else
            time.sleep(0.01)  # polling a key another worker is about to set; bounded by the deadline

    def finish(self, device_id: str, kind: str, press_id: str, case: str) -> None:
        self._redis.set(self._key(device_id, kind, press_id), case.encode(), px=self._ttl_ms)

    def finish_many(self, items: Sequence[tuple[str, str, str, str]]) -> None:
        """``finish`` for a batch, ``(device_id, kind, press_id, case)`` each, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for device_id, kind, press_id, case in items:
            pipe.set(self._key(device_id, kind, press_id), case.encode(), px=self._ttl_ms)
        pipe.execute()

    def abort(self, device_id: str, kind: str, press_id: str) -> None:
        self._redis.delete(self._key(device_id, kind, press_id))

    def case_of(self, device_id: str, press_id: str) -> str | None:
        value = self._redis.get(self._key(device_id, "press", press_id))
        return value.decode() if value else None


class MemoryPressLedger:
    """The ledger in process memory, for a single-process deployment without Redis (same interface)."""

    def __init__(self, ttl_s: float = 86400.0, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._ttl = ttl_s
        self._clock = clock

    def begin(self, device_id: str, kind: str, press_id: str, wait_s: float = 0.0) -> tuple[bool, str | None]:
        now = self._clock()
        with self._lock:
            entry = self._entries.get((device_id, kind, press_id))
            if entry is not None and entry[1] > now:
                return False, entry[0] or None
            if len(self._entries) > 100_000:
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            self._entries[(device_id, kind, press_id)] = ("", now + self._ttl)
            return True, None

    def finish(self, device_id: str, kind: str, press_id: str, case: str) -> None:
        with self._lock:
            self._entries[(device_id, kind, press_id)] = (case, self._clock() + self._ttl)

    def finish_many(self, items: Sequence[tuple[str, str, str, str]]) -> None:
        for device_id, kind, press_id, case in items:
            self.finish(device_id, kind, press_id, case)

    def abort(self, device_id: str, kind: str, press_id: str) -> None:
        with self._lock:
            self._entries.pop((device_id, kind, press_id), None)

    def case_of(self, device_id: str, press_id: str) -> str | None:
        with self._lock:
            entry = self._entries.get((device_id, "press", press_id))
        return entry[0] or None if entry else None


def ack_message(press: AlarmPress, status: str, case: str | None, **extra: Any) -> dict[str, Any]:
    """The downlink ack a box shows; the same shape over MQTT (``…/ack``) and as the HTTP response body."""
    return {"press_id": press.press_id, "kind": press.kind, "status": status, "case": case,
            "server_time": time.time(), **extra}


def answer(on_ack: OnAck, ack: dict[str, Any]) -> None:
    """Hand one ack to its box's callback; a failing callback is logged, never lets the filing worker die."""
    try:
        on_ack(ack)
    except Exception:
        log.exception("answering press %s failed", ack.get("press_id"))


def case_ack(press: AlarmPress, status: str, case: str) -> dict[str, Any]:
    """The ack that carries a recorded case (``-``: a cancel whose press was never filed)."""
    if press.kind == "cancel":
        return ack_message(press, "cancelled", None if case == "-" else case, reason=press.reason)
    return ack_message(press, status, case)


def _with_case(press: AlarmPress, ledger: "PressLedger | MemoryPressLedger") -> AlarmPress:
    """A cancel carries the case number of the press it cancels, when the ledger still knows it."""
    if press.kind != "cancel":
        return press
    return AlarmPress(press.device_id, press.press_id, press.kind, press.reason, press.at, press.received_at,
                      ledger.case_of(press.device_id, press.press_id), press.raw)


def _settle(press: AlarmPress, result: "str | None | BaseException") -> tuple[dict[str, Any], str | None]:
    """The ack for a filing result, and the case to record in the ledger (None: release the claim)."""
    if isinstance(result, BaseException):
        return ack_message(press, "error", None, retry=True, error=type(result).__name__), None
    if result is None and press.kind == "press":
        return ack_message(press, "error", None, retry=True, error="not_filed"), None
    recorded = str(result or press.case or "-")
    if press.kind == "cancel":
        return ack_message(press, "cancelled", str(result) if result else press.case, reason=press.reason), recorded
    return ack_message(press, "received", str(result)), recorded


def process_press(press: AlarmPress, ledger: "PressLedger | MemoryPressLedger", on_alarm: OnAlarm) -> dict[str, Any]:
    """File a verified press or cancel exactly once and return the ack for the box.

    Status: ``received`` (new press, ``case`` set), ``duplicate`` (same press_id again, same case),
    ``cancelled`` (a cancel was recorded), ``pending`` (a twin is being filed right now; the box's
    retry will get the case), ``error`` (intake failed; ``retry`` is true).
    """
    first, case = ledger.begin(press.device_id, press.kind, press.press_id)
    if not first:
        return ack_message(press, "duplicate" if case else "pending", case or None)
    press = _with_case(press, ledger)
    result: str | None | BaseException
    try:
        result = on_alarm(press)
    except Exception as exc:  # intake down: tell the box to retry, keep nothing half-done
        log.exception("filing alarm %s/%s failed", press.device_id, press.press_id)
        result = exc
    ack, recorded = _settle(press, result)
    if recorded is None:
        ledger.abort(press.device_id, press.kind, press.press_id)
    else:
        ledger.finish(press.device_id, press.kind, press.press_id, recorded)
    return ack


class AlarmBatcher:
    """Group commit for one-key alarms: presses queue here and one worker files all that wait in one call.

    Why: filing is a SQL transaction, and a burst of presses filed one transaction at a time queues
    for seconds; ``on_alarms`` files the whole batch in one transaction, so the burst is answered in
    a few commits. The worker takes what is waiting, up to ``max_batch``; when it finds fewer it waits
    at most ``max_wait_s`` for more (so a lone press costs only that much). Every press is answered
    through its own ``on_ack`` right after its batch returned — after the commit.

    ``submit`` claims the press in the ledger first (a retry or redelivery never files twice and is
    answered at once); ``file`` is the blocking form for the HTTPS path. If ``on_alarms`` raises, or
    gives None / an exception for a press, that press's claim is released and its box told to retry.
    ``stop`` files everything already queued before it returns, so nothing accepted is dropped.
    """

    def __init__(self, ledger: "PressLedger | MemoryPressLedger", on_alarms: OnAlarms, *, max_batch: int = 64,
                 max_wait_s: float = 0.002, name: str = "gw-alarm-filer") -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._ledger = ledger
        self._on_alarms = on_alarms
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_s)
        self._name = name
        self._queue: queue.SimpleQueue[tuple[AlarmPress, OnAck] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        self.filed = 0
        self.largest_batch = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("AlarmBatcher is stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """File what is queued, then end the worker. Presses submitted afterwards are refused (retry)."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout_s)
        self._drain_refused()

    # -- submitting ----------------------------------------------------------------------------
    def submit(self, press: AlarmPress, on_ack: OnAck) -> None:
        """Claim the press, queue it, and answer through ``on_ack(ack)`` (at once for a repeat)."""
        first, case = self._ledger.begin(press.device_id, press.kind, press.press_id)
        if not first:
            on_ack(ack_message(press, "duplicate" if case else "pending", case or None))
            return
        with self._lock:  # queued strictly before stop's marker, or refused: never left unanswered
            refused = self._closed
            if not refused:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
                self._queue.put((press, on_ack))
        if refused:
            self._ledger.abort(press.device_id, press.kind, press.press_id)
            on_ack(ack_message(press, "error", None, retry=True, error="shutting_down"))

    def file(self, press: AlarmPress, timeout_s: float = 10.0) -> dict[str, Any]:
        """Submit and wait for the ack. Past ``timeout_s`` the answer is ``pending``: the press is still
        queued and will be filed; the box's retry then gets its case as a ``duplicate``."""
        return wait_for_ack(self.submit, press, timeout_s)

    @property
    def waiting(self) -> int:
        """Presses queued and not yet handed to ``on_alarms``."""
        return self._queue.qsize()

    # -- the filing worker ---------------------------------------------------------------------
    def _take(self) -> tuple[list[tuple[AlarmPress, OnAck]], bool]:
        """The next batch (blocking for its first press) and whether the stop marker was met."""
        item = self._queue.get()
        if item is None:
            return [], True
        batch = [item]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take()
            if batch:  # presses queued before the stop marker are still filed
                self._file(batch)

    def _drain_refused(self) -> None:
        """Presses still queued when the worker did not end in time: released, their boxes told to retry."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                press, on_ack = item
                self._ledger.abort(press.device_id, press.kind, press.press_id)
                answer(on_ack, ack_message(press, "error", None, retry=True, error="shutting_down"))

    def _file(self, batch: list[tuple[AlarmPress, OnAck]]) -> None:
        try:
            presses = [_with_case(press, self._ledger) for press, _ in batch]
        except Exception as exc:  # the ledger (Redis) is away: nothing filed, every box retries
            presses = [press for press, _ in batch]
            results: Sequence[str | None | BaseException] = [exc] * len(batch)
        else:
            try:
                results = list(self._on_alarms(presses))
                if len(results) != len(presses):
                    raise RuntimeError(f"on_alarms returned {len(results)} results for {len(presses)} presses")
            except Exception as exc:  # intake down: tell every box to retry, keep nothing half-done
                log.exception("filing a batch of %d alarms failed", len(presses))
                results = [exc] * len(presses)
        self.batches += 1
        self.filed += len(presses)
        self.largest_batch = max(self.largest_batch, len(presses))
        acks, finished = [], []
        for press, result in zip(presses, results):
            ack, recorded = _settle(press, result)
            acks.append(ack)
            if recorded is None:
                try:
                    self._ledger.abort(press.device_id, press.kind, press.press_id)
                except Exception:
                    log.exception("releasing the ledger claim of %s/%s failed", press.device_id, press.press_id)
            else:
                finished.append((press.device_id, press.kind, press.press_id, recorded))
        if finished:
            try:
                self._ledger.finish_many(finished)
            except Exception:  # the cases are filed; a repeat press now waits for the claim, then is 'pending'
                log.exception("recording %d filed presses in the ledger failed", len(finished))
        for (_, on_ack), ack in zip(batch, acks):
            answer(on_ack, ack)


@dataclass
class PressOutcome:
    """What the gateway returns: an HTTP status and a JSON body (the ack, or the refusal's reason)."""

    http_status: int
    body: dict[str, Any]
    press: AlarmPress | None = None
    reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


_HTTP_FOR_REASON = {"malformed": 400, "invalid_payload": 400, "unknown_device": 401, "bad_signature": 401,
                    "timestamp_out_of_window": 401, "replayed_nonce": 409, "oversized_payload": 413}


def handle_press(
    registry: DeviceRegistry,
    body: bytes,
    headers: Mapping[str, Any],
    *,
    nonce_store: NonceStore,
    ledger: "PressLedger | MemoryPressLedger",
    on_alarm: OnAlarm | None = None,
    batcher: AlarmBatcher | None = None,
    on_reject: OnReject | None = None,
    now: float | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    max_body_bytes: int = 64 * 1024,
    source: str = "http:alarm",
) -> PressOutcome:
    """The whole HTTPS press: verify, parse, de-duplicate, file, ack. Never raises for bad input.

    The gateway mounts ``POST /api/v1/alarms`` (any path) that passes the raw body and headers
    here and answers ``outcome.http_status`` with ``outcome.body``. Refusals also go to ``on_reject``
    (the dead-letter stream). ``timestamp_out_of_window`` answers carry ``server_time`` so a box
    with a drifting clock can correct itself. With ``batcher`` (the one the MQTT ingest uses, see
    ``MqttIngest.alarm_batcher``) the press is filed in the next group commit; ``on_alarm`` is the
    one-at-a-time fallback. The batcher claims the press in its own ledger (normally the same one).
    """
    if batcher is None and on_alarm is None:
        raise TypeError("handle_press needs on_alarm or batcher")
    received_at = time.time() if now is None else now

    def refuse(reason: str, detail: str) -> PressOutcome:
        metrics.REJECTS.labels(reason).inc()
        if on_reject is not None:
            try:
                on_reject(source, reason, body)
            except Exception:
                log.exception("on_reject failed")
        out: dict[str, Any] = {"status": "rejected", "reason": reason}
        if reason == "timestamp_out_of_window":
            out["server_time"] = time.time()
        if detail and reason in ("malformed", "invalid_payload"):
            out["detail"] = detail
        return PressOutcome(_HTTP_FOR_REASON.get(reason, 400), out, reason=reason)

    if len(body) > max_body_bytes:
        return refuse("oversized_payload", "")
    try:
        doc = verify_signed(registry, body, headers, received_at, nonce_store, window_s)
    except SignatureError as exc:
        return refuse(exc.reason, exc.detail)
    try:
        press = parse_press(doc, received_at)
    except PressError as exc:  # authentic but unusable: the nonce stays spent, a fixed retry signs anew
        return refuse(exc.reason, str(exc))
    ack = batcher.file(press) if batcher is not None else process_press(press, ledger, on_alarm)
    metrics.ALARMS.labels(press.kind, ack["status"]).inc()
    metrics.ACK_SECONDS.observe(time.time() - received_at)
    if ack["status"] == "error":
        nonce_store.release(press.device_id, doc["_nonce"])
        return PressOutcome(503, ack, press)
    return PressOutcome(200 if ack["status"] != "pending" else 202, ack, press)


def wait_for_ack(submit: Callable[[AlarmPress, OnAck], None], press: AlarmPress, timeout_s: float) -> dict[str, Any]:
    """The blocking form of an asynchronous press path: submit, wait for the ack; past ``timeout_s`` the answer is
    ``pending`` (the press stays queued and will be filed; the box's retry then gets its case)."""
    done = threading.Event()
    box: list[dict[str, Any]] = []

    def on_ack(ack: dict[str, Any]) -> None:
        box.append(ack)
        done.set()

    submit(press, on_ack)
    if not done.wait(timeout_s):
        return ack_message(press, "pending", None)
    return box[0]
