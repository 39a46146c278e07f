"""Signed one-key alarms: HMAC-SHA256 with the device's secret, a time window and single-use nonces.

An alarm is the one input that sends people out, so a box must prove who it is and a captured
message must not be playable again. The box signs ``f"{timestamp}\\n{nonce}\\n".encode() + body``
with its secret (hex digest) and sends the three values beside the body:

* over HTTPS as headers ``X-GW-Device``, ``X-GW-Timestamp`` (Unix seconds), ``X-GW-Nonce``,
  ``X-GW-Signature``;
* over MQTT (``…/events``) as a JSON envelope ``{"device", "timestamp", "nonce", "signature",
  "body": "<the exact body text>"}`` — the body travels as a string so its bytes survive intact.

:func:`verify_signed` checks, in this order: the fields are well-formed (``malformed``), the device
is registered with a secret (``unknown_device``), the signature (``bad_signature``), the timestamp
lies within ±``window_s`` of now (``timestamp_out_of_window``), and the nonce was never seen before
(``replayed_nonce``). The nonce is claimed only after the signature passed, so a forger cannot burn
a box's nonces; it is remembered in Redis (``SET NX`` with a TTL a little over the window) so every
ingest process and gateway worker shares one memory. A box that gets no ack re-signs its retry with
a fresh nonce and the same ``press_id``; the press ledger then answers with the same case number.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import redis

from ingest.devices.registry import DeviceRegistry
from ingest.redis_connect import hash_tag

Reason = Literal["bad_signature", "replayed_nonce", "timestamp_out_of_window", "unknown_device", "malformed"]

DEFAULT_WINDOW_S = 60.0
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
_TIMESTAMP = re.compile(r"^-?\d{1,12}$")


class SignatureError(Exception):
    """A signed request was refused; ``reason`` is one of :data:`Reason`, ``device_id`` who it claimed to be."""

    def __init__(self, reason: Reason, detail: str = "", device_id: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.device_id = device_id
        super().__init__(f"{reason}: {detail}" if detail else reason)


class NonceStore(Protocol):
    def claim(self, device_id: str, nonce: str, ttl_s: float) -> bool:
        """True the first time this (device, nonce) is seen within ``ttl_s``; False for a replay."""

    def claim_many(self, claims: list[tuple[str, str, float]]) -> list[bool]:
        """``claim`` for each ``(device id, nonce, ttl s)`` in order, so a batch costs one round trip where the store
        is remote. The second of two equal nonces in one batch is a replay, as it would be one at a time."""

    def release(self, device_id: str, nonce: str) -> None:
        """Forget a claimed nonce (handling failed before anything was done, so a redelivery may pass)."""


class RedisNonceStore:
    """Nonces in Redis: ``{prefix}:nonce:{device}:{nonce}`` set with NX and an expiry, shared across processes."""

    def __init__(self, client: redis.Redis, prefix: str = "gw") -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, device_id: str, nonce: str) -> str:
        return f"{hash_tag(self._prefix)}:nonce:{device_id}:{nonce}"

    def claim(self, device_id: str, nonce: str, ttl_s: float) -> bool:
        return bool(self._redis.set(self._key(device_id, nonce), b"1", nx=True, px=max(1, int(ttl_s * 1000))))

    def claim_many(self, claims: list[tuple[str, str, float]]) -> list[bool]:
        """``claim`` for each ``(device id, nonce, ttl s)`` in one pipeline (SET NX runs in order)."""
        pipe = self._redis.pipeline(transaction=False)
        for device_id, nonce, ttl_s in claims:
            pipe.set(self._key(device_id, nonce), b"1", nx=True, px=max(1, int(ttl_s * 1000)))
        return [bool(ok) for ok in pipe.execute()]

    def release(self, device_id: str, nonce: str) -> None:
        self._redis.delete(self._key(device_id, nonce))


class MemoryNonceStore:
    """In-process nonce memory for a single-process deployment without Redis, and for unit use."""

    def __init__(self, clock=time.monotonic) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def claim(self, device_id: str, nonce: str, ttl_s: float) -> bool:
        now = self._clock()
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            expires = self._seen.get((device_id, nonce))
            if expires is not None and expires > now:
                return False
            self._seen[(device_id, nonce)] = now + ttl_s
            return True

    def claim_many(self, claims: list[tuple[str, str, float]]) -> list[bool]:
        return [self.claim(device_id, nonce, ttl_s) for device_id, nonce, ttl_s in claims]

    def release(self, device_id: str, nonce: str) -> None:
        with self._lock:
            self._seen.pop((device_id, nonce), None)


def _mac(secret: str, body: bytes, timestamp: int | str, nonce: str) -> str:
    message = f"{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def sign(secret: str, body: bytes, timestamp: int, nonce: str) -> dict[str, str]:
    """The headers that authenticate ``body`` (add ``X-GW-Device`` yourself, or use :func:`signed_headers`)."""
    return {"X-GW-Timestamp": str(int(timestamp)), "X-GW-Nonce": nonce, "X-GW-Signature": _mac(secret, body, int(timestamp), nonce)}


def signed_headers(device_id: str, secret: str, body: bytes, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {"X-GW-Device": device_id, **sign(secret, body, ts, nonce or new_nonce())}


def signed_envelope(device_id: str, secret: str, body: bytes, timestamp: int | None = None, nonce: str | None = None) -> bytes:
    """The MQTT form of a signed message: a JSON envelope carrying the body text verbatim."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    nonce = nonce or new_nonce()
    return json.dumps({
        "device": device_id, "timestamp": ts, "nonce": nonce,
        "signature": _mac(secret, body, ts, nonce), "body": body.decode("utf-8"),
    }, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _normalise(fields: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in fields.items():
        k = str(key).lower()
        if k.startswith("x-gw-"):
            k = k[5:]
        if k in ("device", "timestamp", "nonce", "signature"):
            out[k] = value if isinstance(value, str) else json.dumps(value)
    return out


def verify_signed(
    registry: DeviceRegistry,
    body: bytes,
    headers_or_fields: Mapping[str, Any],
    now: float,
    nonce_store: NonceStore,
    window_s: float = DEFAULT_WINDOW_S,
) -> dict[str, Any]:
    """Authenticate a signed body and return it decoded (with ``device`` filled in); raise SignatureError."""
    fields = _normalise(headers_or_fields)
    ts_text, nonce, signature = fields.get("timestamp", ""), fields.get("nonce", ""), fields.get("signature", "")
    if not _TIMESTAMP.match(ts_text):
        raise SignatureError("malformed", "timestamp must be integer Unix seconds")
    if not _NONCE.match(nonce):
        raise SignatureError("malformed", "nonce must be 8-64 characters of [A-Za-z0-9_-]")
    if not _SIGNATURE.match(signature):
        raise SignatureError("malformed", "signature must be a hex SHA-256 HMAC")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise SignatureError("malformed", "body is not JSON") from None
    if not isinstance(doc, dict):
        raise SignatureError("malformed", "body must be a JSON object")
    claimed = fields.get("device")
    in_body = doc.get("device")
    if in_body is not None and not isinstance(in_body, str):
        raise SignatureError("malformed", "body.device must be a string")
    if claimed and in_body and claimed != in_body:
        raise SignatureError("malformed", "the signing device and body.device differ", claimed)
    device_id = claimed or in_body
    if not device_id:
        raise SignatureError("malformed", "no device named")
    secret = registry.secret_for(device_id)
    if secret is None:
        raise SignatureError("unknown_device", "not registered or has no secret", device_id)
    if not hmac.compare_digest(_mac(secret, body, ts_text, nonce), signature.lower()):
        raise SignatureError("bad_signature", "", device_id)
    if abs(now - int(ts_text)) > window_s:
        raise SignatureError("timestamp_out_of_window", f"timestamp is {int(ts_text) - now:+.0f} s from now", device_id)
    if not nonce_store.claim(device_id, nonce, 2 * window_s + 5):
        raise SignatureError("replayed_nonce", "", device_id)
    doc["device"] = device_id
    doc["_nonce"] = nonce
    return doc
