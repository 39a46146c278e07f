"""Pluggable outbound messages: SMS gateways and a WeChat-style webhook.

GridWatch does not talk to any one SMS vendor. ``SmsGateway`` is the plug: ``OutboxSms`` appends JSON
lines to a file (the demo, the tests, an air-gapped site whose operator forwards them), ``WebhookSms``
POSTs each message to a URL the site's own SMS relay listens on, signed with HMAC-SHA256 over
``timestamp.body`` (the same scheme as the case webhooks). Numbers are masked in every log line.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from alerts.channels.config import SmsConfig, WeChatConfig
from alerts.channels.masking import mask_phone

log = logging.getLogger("alerts.channels")


class DeliveryError(RuntimeError):
    """The gateway refused or could not be reached; the message says why (never the number or the text)."""


@dataclass(frozen=True)
class Sent:
    id: str
    to_masked: str
    backend: str


@runtime_checkable
class SmsGateway(Protocol):
    """Sends one text to one mainland mobile number; raises DeliveryError when it could not."""

    name: str

    def send(self, phone: str, text: str, *, purpose: str = "notify") -> Sent: ...


class OutboxSms:
    """Writes each message as one JSON line to a file: what the demo and the tests read codes back from."""

    name = "outbox"

    def __init__(self, path: Path, signature: str = ""):
        self.path = Path(path)
        self.signature = signature
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, phone: str, text: str, *, purpose: str = "notify") -> Sent:
        mid = uuid.uuid4().hex
        line = json.dumps({"id": mid, "at": datetime.now(timezone.utc).isoformat(), "to": phone, "purpose": purpose,
                           "text": f"{self.signature}{text}"}, ensure_ascii=False)
        with self._lock:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        log.info("sms %s to %s queued in outbox", purpose, mask_phone(phone))
        return Sent(mid, mask_phone(phone), self.name)

    def messages(self, phone: str | None = None) -> list[dict[str, Any]]:
        """Everything written so far (optionally to one number), oldest first."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(line) for line in lines if line.strip()]
        return [m for m in out if phone is None or m["to"] == phone]


def sign_body(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class _SignedPoster:
    def __init__(self, url: str, secret: str | None, timeout_s: float, client: httpx.Client | None = None):
        self.url, self._secret, self.timeout = url, secret, timeout_s
        self._client = client

    def post(self, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-GridWatch-Timestamp": ts}
        if self._secret:
            headers["X-GridWatch-Signature"] = "sha256=" + sign_body(self._secret, body, ts)
        try:
            if self._client is not None:
                resp = self._client.post(self.url, content=body, headers=headers, timeout=self.timeout)
            else:
                resp = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"cannot reach {httpx.URL(self.url).host}: {type(exc).__name__}") from None
        if resp.status_code >= 300:
            raise DeliveryError(f"{httpx.URL(self.url).host} answered HTTP {resp.status_code}")
        return resp


class WebhookSms(_SignedPoster):
    """POSTs ``{"id", "to", "text", "purpose"}`` as JSON to the site's SMS relay."""

    name = "webhook"

    def __init__(self, url: str, secret: str | None = None, timeout_s: float = 5.0, signature: str = "",
                 client: httpx.Client | None = None):
        super().__init__(url, secret, timeout_s, client)
        self.signature = signature

    def send(self, phone: str, text: str, *, purpose: str = "notify") -> Sent:
        mid = uuid.uuid4().hex
        self.post({"id": mid, "to": phone, "text": f"{self.signature}{text}", "purpose": purpose})
        log.info("sms %s to %s sent via webhook", purpose, mask_phone(phone))
        return Sent(mid, mask_phone(phone), self.name)


class WeChatWebhook(_SignedPoster):
    """A WeChat-style text message (``{"msgtype": "text", "text": {"content"}, "touser"}``) to a bot or bridge."""

    name = "wechat"

    def send(self, recipient: str, text: str, *, purpose: str = "notify") -> Sent:
        mid = uuid.uuid4().hex
        self.post({"msgid": mid, "msgtype": "text", "touser": recipient, "purpose": purpose, "text": {"content": text}})
        return Sent(mid, mask_phone(recipient), self.name)


def build_sms(cfg: SmsConfig, run_dir: Path) -> SmsGateway:
    """The gateway the settings name."""
    if cfg.backend == "webhook":
        if not cfg.webhook_url:
            raise ValueError("channels.sms.backend is webhook but channels.sms.webhook_url is not set")
        return WebhookSms(cfg.webhook_url, cfg.webhook_secret, cfg.timeout_s, cfg.signature)
    path = Path(cfg.outbox_file)
    return OutboxSms(path if path.is_absolute() else run_dir / path, cfg.signature)


def build_wechat(cfg: WeChatConfig | None) -> WeChatWebhook | None:
    return WeChatWebhook(cfg.url, cfg.secret, cfg.timeout_s) if cfg else None
