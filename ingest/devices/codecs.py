"""Payload codecs: bytes from a device → the canonical telemetry dict, and its validation into Readings.

Most devices speak JSON; vendors' gateways often do not. A codec is any callable
``(channel, payload_bytes) -> object`` that returns the canonical shape below; the device's
``codec`` field picks it by name. Built-in: ``json`` and ``kv`` (``key=value;key=value`` text, a
common shape of cheap NB-IoT modules). Others come from installed packages through the
``gridwatch.codecs`` entry-point group (``name = "package.module:function"``), loaded on first use,
or from :func:`register_codec` at runtime.

Canonical telemetry (one reading set, or a batch under ``readings``)::

    {"device": "smoke-0001", "ts": 1767225600.5, "seq": 17, "battery": 87,
     "metrics": {"smoke": 0.4, "temp": 22.5}}
    {"device": "water-0001", "readings": [{"ts": …, "metrics": {…}}, …]}

``ts`` (device time, Unix seconds) may be omitted and then defaults to the receive time.
Booleans in metrics are read as 1/0 (door open, fence breach).
"""
from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from ingest.devices.messages import Reading

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gridwatch.codecs"
MAX_METRICS = 64
MAX_BATCH = 1000
EARLIEST_TS, LATEST_TS = 946_684_800.0, 4_102_444_800.0  # 2000-01-01, 2100-01-01 UTC

Codec = Callable[[str, bytes], Any]


class CodecError(ValueError):
    """The payload cannot be used; ``reason`` is the label for the reject counter and the dead-letter entry."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def json_codec(channel: str, payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CodecError("malformed_json", str(exc)[:200]) from None


def kv_codec(channel: str, payload: bytes) -> Any:
    """``device=smoke-0001;ts=1767225600;battery=90;smoke=3.2`` → canonical dict (numbers where they parse)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise CodecError("malformed_payload", str(exc)) from None
    out: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise CodecError("malformed_payload", f"not key=value: {part[:40]!r}")
        key = key.strip()
        value = value.strip()
        if key == "device":
            out["device"] = value
            continue
        try:
            number: Any = float(value)
        except ValueError:
            raise CodecError("invalid_payload", f"{key} is not a number") from None
        if key in ("ts", "seq", "battery"):
            out[key] = int(number) if key == "seq" else number
        else:
            metrics[key] = number
    out["metrics"] = metrics
    return out


_lock = threading.Lock()
_codecs: dict[str, Codec] = {"json": json_codec, "kv": kv_codec}
_entry_points_loaded = False


def register_codec(name: str, codec: Codec) -> None:
    """Make ``codec`` available under ``name`` (replacing one of that name)."""
    with _lock:
        _codecs[name] = codec


def _load_entry_points() -> None:
    global _entry_points_loaded
    with _lock:
        if _entry_points_loaded:
            return
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in _codecs:
                continue
            try:
                _codecs[ep.name] = ep.load()
            except Exception:  # a broken plug-in must not take ingest down; its devices get rejects
                log.exception("codec entry point %s (%s) failed to load", ep.name, ep.value)
        _entry_points_loaded = True


def reload_entry_points() -> None:
    """Forget which entry points were read, so newly installed codec packages are found."""
    global _entry_points_loaded
    with _lock:
        _entry_points_loaded = False


def get_codec(name: str) -> Codec:
    codec = _codecs.get(name)
    if codec is None:
        _load_entry_points()
        codec = _codecs.get(name)
    if codec is None:
        raise CodecError("unknown_codec", f"no codec named {name!r}")
    return codec


def available_codecs() -> list[str]:
    _load_entry_points()
    return sorted(_codecs)


def _number(value: Any, what: str) -> float:
    if value is True or value is False:
        return 1.0 if value else 0.0
    if not isinstance(value, (int, float)):
        raise CodecError("invalid_payload", f"{what} must be a number, not {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise CodecError("invalid_payload", f"{what} is not finite")
    return value


def _one(entry: Any, device_id: str, received_at: float, raw: dict[str, Any], out: list[Reading]) -> float | None:
    if not isinstance(entry, dict):
        raise CodecError("invalid_payload", "a reading must be an object")
    ts = entry.get("ts")
    at = received_at if ts is None else _number(ts, "ts")
    if ts is not None and not EARLIEST_TS <= at <= LATEST_TS:  # milliseconds, or a clock that never was set
        raise CodecError("invalid_payload", f"ts {at!r} is not Unix seconds between 2000 and 2100")
    metrics = entry.get("metrics", {})
    if not isinstance(metrics, dict):
        raise CodecError("invalid_payload", "metrics must be an object")
    if len(metrics) > MAX_METRICS:
        raise CodecError("invalid_payload", f"more than {MAX_METRICS} metrics")
    battery = entry.get("battery")
    battery_value = None if battery is None else _number(battery, "battery")
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise CodecError("invalid_payload", "metric names must be non-empty strings")
        out.append(Reading(device_id, name, _number(value, f"metrics.{name}"), at, received_at, raw))
    if battery_value is not None:
        out.append(Reading(device_id, "battery", battery_value, at, received_at, raw))
    return battery_value


def telemetry_readings(doc: Any, topic_device: str, received_at: float) -> tuple[list[Reading], float | None]:
    """Validate a decoded telemetry document; return its readings and the last battery level seen.

    Raises :class:`CodecError` (``invalid_payload`` or ``topic_device_mismatch``) — nothing is
    half-accepted: either every reading of the message is valid or none is used.
    """
    if not isinstance(doc, dict):
        raise CodecError("invalid_payload", "telemetry must be a JSON object")
    device = doc.get("device", topic_device)
    if not isinstance(device, str):
        raise CodecError("invalid_payload", "device must be a string")
    if device != topic_device:
        raise CodecError("topic_device_mismatch", f"payload names {device[:64]!r} on the topic of {topic_device!r}")
    out: list[Reading] = []
    battery: float | None = None
    if "readings" in doc:
        batch = doc["readings"]
        if not isinstance(batch, list) or not batch:
            raise CodecError("invalid_payload", "readings must be a non-empty list")
        if len(batch) > MAX_BATCH:
            raise CodecError("invalid_payload", f"more than {MAX_BATCH} readings in one message")
        for entry in batch:
            level = _one(entry, topic_device, received_at, doc, out)
            battery = level if level is not None else battery
    else:
        battery = _one(doc, topic_device, received_at, doc, out)
    if not out:
        raise CodecError("invalid_payload", "no metrics")
    return out, battery
