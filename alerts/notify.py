"""Telling the outside world about ticket events: signed webhooks and MQTT publishes.

``Notifier`` reads ``keys.events`` through its own consumer group (``notify``), so notification
delivery never slows intake or a worker's click, and survives restarts: an event is acknowledged
after every webhook answered 2xx (or failed ``attempts`` times, then it goes to the dead-letter
stream with the URL and status, never the secret) and the broker acknowledged the MQTT publish (PUBACK).

Delivery is at least once, never lost: an event a notifier read and died holding (before or after
sending it) is taken over by the next notifier after ``claim_idle_s`` (XAUTOCLAIM) and sent again. Every
delivery carries the event's id — the ``X-GridWatch-Event`` header and ``event_id`` in the JSON — so a
receiver that saw it already drops the repeat (the idempotency key; exactly-once across a crash needs it).

Webhook requests carry ``X-GridWatch-Timestamp`` and ``X-GridWatch-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``"{timestamp}.{body}"`` under the hook's secret; receivers check it with
``verify_signature`` (constant-time, with a freshness window against replays).
MQTT topics: ``{mqtt_topic_prefix}/{grid_code}/{event type}`` and, for people the event names as
on duty, ``{mqtt_topic_prefix}/users/{user}``; QoS 1, JSON payloads.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any

import httpx
import redis

from alerts.config import AlertsConfig, WebhookConfig
from alerts.consumer import Outcome, StreamConsumer
from alerts.streams import StreamKeys, dead_letter
from ingest.failpoints import failpoint
from ingest.backoff import Backoff

log = logging.getLogger(__name__)

NOTIFY_GROUP = "notify"
SIGNATURE_HEADER = "X-GridWatch-Signature"
TIMESTAMP_HEADER = "X-GridWatch-Timestamp"
EVENT_HEADER = "X-GridWatch-Event"


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds as text)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str, *, tolerance_s: float = 300,
                     now: float | None = None) -> bool:
    """True when ``signature`` is ours for this body and the timestamp is fresh."""
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, body, timestamp), signature)


def _wants(hook: WebhookConfig, etype: str) -> bool:
    return "*" in hook.events or etype in hook.events


class Notifier:
    """Delivers events from the events stream to webhooks and MQTT."""

    def __init__(self, cfg: AlertsConfig, redis: redis.Redis, keys: StreamKeys, consumer: str = "notify-1", *,
                 mqtt: Any | None = None, http: httpx.Client | None = None, attempts: int = 3, batch: int = 50,
                 claim_idle_s: float = 30.0):
        self.cfg, self.redis, self.keys, self.consumer = cfg, redis, keys, consumer
        self.stream = StreamConsumer(redis, keys.events, NOTIFY_GROUP, consumer, batch=batch, name="notifier",
                                     claim_idle_s=max(0.1, claim_idle_s), retry_s=(1.0, 1.0))
        self.mqtt_timeout_s = 5.0
        self.mqtt = mqtt
        self.http = http or httpx.Client()
        self.attempts = attempts
        self.sent = {"webhook": 0, "mqtt": 0, "failed": 0}
        self.stream.ensure_group()

    def deliver_webhook(self, hook: WebhookConfig, body: bytes, event_id: str = "") -> tuple[bool, str]:
        last = ""
        backoff = Backoff(0.2, 2.0)  # between retries of one delivery
        for _ in range(self.attempts):
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(hook.secret, body, ts)}
            if event_id:
                headers[EVENT_HEADER] = event_id
            try:
                resp = self.http.post(hook.url, content=body, headers=headers, timeout=hook.timeout_s)
                if 200 <= resp.status_code < 300:
                    return True, ""
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(backoff.next_delay())
        return False, last

    def handle(self, event: dict[str, Any], event_id: str = "") -> None:
        """Deliver one event (a dict as written by ``alerts.events.publish``; ``event_id``: its stream id)."""
        etype = event.get("type", "")
        if event_id:
            event = {**event, "event_id": event_id}
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        for hook in self.cfg.webhooks:
            if not _wants(hook, etype):
                continue
            ok, why = self.deliver_webhook(hook, body, event_id)
            if ok:
                self.sent["webhook"] += 1
            else:
                self.sent["failed"] += 1
                log.warning("webhook %s failed for %s: %s", hook.url, etype, why)
                dead_letter(self.redis, self.keys, "notify", f"webhook {hook.url}: {why}", body)
        if self.mqtt is not None:
            ticket = event.get("ticket") or {}
            prefix = self.cfg.mqtt_topic_prefix.rstrip("/")
            topics = [f"{prefix}/{ticket.get('grid_code') or 'none'}/{etype}"]
            topics += [f"{prefix}/users/{u}" for u in event.get("notify", [])]
            infos = [(topic, self.mqtt.publish(topic, body, qos=1)) for topic in topics]
            for topic, info in infos:
                # Handed to paho is not delivered: a QoS 1 publish still queued in this process dies with it,
                # so the event is acknowledged only once the broker answered PUBACK (or it failed: dead letter).
                if info.rc == 0:
                    try:
                        info.wait_for_publish(self.mqtt_timeout_s)
                    except (RuntimeError, ValueError):
                        pass
                if info.rc == 0 and info.is_published():
                    self.sent["mqtt"] += 1
                else:
                    self.sent["failed"] += 1
                    log.warning("MQTT publish to %s not confirmed (rc=%s)", topic, info.rc)
                    dead_letter(self.redis, self.keys, "notify", f"mqtt {topic}: not confirmed (rc={info.rc})", body)

    def claim_stale(self) -> list[tuple[Any, dict]]:
        """Events another notifier read and never acknowledged (it died) for longer than ``claim_idle_s``."""
        return self.stream.claim_stale()

    def _deliver_entry(self, entry_id: str, fields: dict, _quiet: bool = False) -> Outcome:
        """One stream entry: delivered (or dead-lettered), then acknowledged; an unreadable one only acknowledged."""
        raw = fields.get(b"event", fields.get("event")) if fields else None
        try:
            event = json.loads(raw) if raw else None
        except ValueError:
            event = None
        if event is not None:
            failpoint("notify.before_send")
            self.handle(event, entry_id)
            failpoint("notify.after_send")
        return Outcome.DONE

    def process_batch(self, block_ms: int = 1000) -> int:
        return self.stream.process_batch(self._deliver_entry, block_ms)

    def run_forever(self, stop_event: threading.Event, block_ms: int = 1000) -> None:
        self.stream.run_forever(stop_event, self._deliver_entry, block_ms)
