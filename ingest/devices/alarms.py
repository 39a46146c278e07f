"""One-key alarm (一键报警) handling shared by the MQTT path and the gateway's HTTPS endpoint.

A verified press is turned into an :class:`AlarmPress`, de-duplicated by its ``press_id`` through
the :class:`PressLedger` (a retry, a redelivery or a double submit gets the case number of the first),
handed to ``on_alarm`` — the runtime's synchronous intake, which files the case and returns its
number — and answered with an ack the box can show: "received, case number …".

A cancel (误按) names the ``press_id`` it cancels; the ledger supplies the case number of that press,
so the runtime can mark the case cancelled with the resident's reason.

If ``on_alarm`` fails, the ledger entry and the nonce are released and the box is told ``error``
with ``retry: true``: nothing was filed, so a retry must be able to pass.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from ingest.devices import metrics
from ingest.devices.messages import AlarmPress
from ingest.devices.registry import DeviceRegistry
from ingest.devices.signing import DEFAULT_WINDOW_S, NonceStore, SignatureError, verify_signed

log = logging.getLogger(__name__)

_PRESS_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_REASON = 200

OnAlarm = Callable[[AlarmPress], "str | None"]
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
        return f"{self._prefix}:press:{device_id}:{kind}:{press_id}"

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


def process_press(press: AlarmPress, ledger: "PressLedger | MemoryPressLedger", on_alarm: OnAlarm) -> dict[str, Any]:
    """File a verified press or cancel exactly once and return the ack for the box.

    Status: ``received`` (new press, ``case`` set), ``duplicate`` (same press_id again, same case),
    ``cancelled`` (a cancel was recorded), ``pending`` (a twin is being filed right now; the box's
    retry will get the case), ``error`` (intake failed; ``retry`` is true).
    """
    first, case = ledger.begin(press.device_id, press.kind, press.press_id)
    if not first:
        return ack_message(press, "duplicate" if case else "pending", case or None)
    if press.kind == "cancel":
        original = ledger.case_of(press.device_id, press.press_id)
        press = AlarmPress(press.device_id, press.press_id, press.kind, press.reason, press.at,
                           press.received_at, original, press.raw)
    try:
        case = on_alarm(press)
    except Exception as exc:  # intake down: tell the box to retry, keep nothing half-done
        ledger.abort(press.device_id, press.kind, press.press_id)
        log.exception("filing alarm %s/%s failed", press.device_id, press.press_id)
        return ack_message(press, "error", None, retry=True, error=type(exc).__name__)
    if case is None and press.kind == "press":
        ledger.abort(press.device_id, press.kind, press.press_id)
        return ack_message(press, "error", None, retry=True, error="not_filed")
    ledger.finish(press.device_id, press.kind, press.press_id, str(case or press.case or "-"))
    if press.kind == "cancel":
        return ack_message(press, "cancelled", str(case) if case else press.case, reason=press.reason)
    return ack_message(press, "received", str(case))


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
    on_alarm: OnAlarm,
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
    with a drifting clock can correct itself.
    """
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
    ack = process_press(press, ledger, on_alarm)
    metrics.ALARMS.labels(press.kind, ack["status"]).inc()
    metrics.ACK_SECONDS.observe(time.time() - received_at)
    if ack["status"] == "error":
        nonce_store.release(press.device_id, doc["_nonce"])
        return PressOutcome(503, ack, press)
    return PressOutcome(200 if ack["status"] != "pending" else 202, ack, press)
