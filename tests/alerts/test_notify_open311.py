"""Signed webhooks to a real local HTTP server, MQTT publishes to the real broker, and the Open311 view."""
from __future__ import annotations

import json
import queue
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt
import pytest

from alerts import open311
from alerts.config import WebhookConfig
from alerts.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, Notifier, sign, verify_signature
from tests.alerts.helpers import anomaly, poll

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hook_server():
    got: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", got
    srv.shutdown()
    srv.server_close()


def test_signature_roundtrip():
    body = b'{"a":1}'
    sig = sign("s3cret", body, "1700000000")
    assert verify_signature("s3cret", body, "1700000000", sig, now=1700000010)
    assert not verify_signature("other", body, "1700000000", sig, now=1700000010)
    assert not verify_signature("s3cret", body + b" ", "1700000000", sig, now=1700000010)
    assert not verify_signature("s3cret", body, "1700000000", sig, now=1700009999)   # replayed later


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_webhook_and_mqtt_delivery(intake, service, alerts_cfg, redis_client, keys, hook_server):
    url, got = hook_server
    cfg = alerts_cfg.model_copy(update={"webhooks": [WebhookConfig(url=url, secret="hook-secret", events=["ticket.created", "ticket.sign"])],
                                        "mqtt_topic_prefix": f"gwtest/{uuid.uuid4().hex[:8]}"})
    received: queue.Queue = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
    sub.on_message = lambda c, u, m: received.put((m.topic, m.payload))
    sub.connect("127.0.0.1", 1883)
    sub.subscribe(f"{cfg.mqtt_topic_prefix}/#", qos=1)
    sub.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    pub.connect("127.0.0.1", 1883)
    pub.loop_start()
    try:
        poll(lambda: sub.is_connected() and pub.is_connected(), timeout=5)
        notifier = Notifier(cfg, redis_client, keys, mqtt=pub)
        tid = intake.file(anomaly()).ticket_id
        service.transition(tid, "comment", "op", "看过了", role="operator")     # not subscribed by the hook
        service.transition(tid, "sign", "w", role="grid_worker")
        poll(lambda: notifier.process_batch(block_ms=50) == 0 and notifier.sent["mqtt"] >= 3, timeout=5)
        headers, body = got.get(timeout=5)
        ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
        assert verify_signature("hook-secret", body, ts, sig)
        assert json.loads(body)["type"] == "ticket.created"
        assert json.loads(got.get(timeout=5)[1])["type"] == "ticket.sign"
        assert got.empty()
        topics = set()
        poll(lambda: (topics.update(t for t, _ in [received.get(timeout=2)]) or len(topics) >= 3), timeout=10)
        assert f"{cfg.mqtt_topic_prefix}/330199001001001/ticket.created" in topics
        assert redis_client.xpending(keys.events, "notify")["pending"] == 0
    finally:
        for c in (sub, pub):
            c.loop_stop()
            c.disconnect()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_failed_webhook_goes_to_dead_letter_without_secret(intake, alerts_cfg, redis_client, keys):
    cfg = alerts_cfg.model_copy(update={"webhooks": [WebhookConfig(url="http://127.0.0.1:9/none", secret="never-log-me", timeout_s=0.5)]})
    n = Notifier(cfg, redis_client, keys, attempts=1)
    intake.file(anomaly())
    assert n.process_batch(block_ms=100) == 1
    [(_, fields)] = redis_client.xrange(keys.deadletter)
    assert b"never-log-me" not in fields[b"reason"] + fields[b"payload"] and fields[b"source"] == b"notify"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_open311_view(intake, service, alerts_cfg):
    svcs = open311.services(alerts_cfg)
    assert {"service_code": "0401", "service_name": "一键报警"}.items() <= next(s for s in svcs if s["service_code"] == "0401").items()
    r = intake.file(anomaly(kind="one_key_alarm", source="alarm", source_id="stb-0001", zone=None,
                            details={"address": "清水区清河街道文一路3号"}))
    intake.file(anomaly())
    reqs = open311.requests(service, status="open")
    assert len(reqs) == 2 and all(x["status"] == "open" for x in reqs)
    [one] = open311.request(service, r.number)
    assert (one["service_request_id"], one["service_code"], one["address"]) == (r.number, "0401", "清水区清河街道文一路3号")
    assert one["lat"] == pytest.approx(30.276) and one["agency_responsible"] == "330199001001001"
    service.transition(r.ticket_id, "void", "d", "测试", role="dispatcher")
    assert [x["service_request_id"] for x in open311.requests(service, status="closed")] == [r.number]
    assert len(open311.requests(service, service_code="0202")) == 1
    with pytest.raises(ValueError):
        open311.requests(service, status="pending")
