"""Nothing valid is lost when the broker restarts under QoS 1 load, or when ingest restarts
(persistent session): each test runs its own Mosquitto with persistence in a temp dir."""
from __future__ import annotations

import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.devices import MqttIngest, device_topic

from .conftest import poll

pytestmark = pytest.mark.timeout(90)


def persistent_publisher(url: str) -> mqtt.Client:
    """A device-like publisher: fixed client id, persistent session, so its unacked QoS 1 messages are resent."""
    port = int(url.rsplit(":", 1)[1])
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gwtest-dev-{uuid.uuid4().hex[:8]}", clean_session=False)
    c.max_inflight_messages_set(500)
    c.max_queued_messages_set(0)
    c.reconnect_delay_set(0.05, 0.5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def _payload(seq: int) -> bytes:
    dev = ("smoke-1", "gas-1", "water-1")[seq % 3]
    return dev, json.dumps({"device": dev, "seq": seq, "metrics": {"seq": seq}}).encode()


def _seqs(ing) -> set[int]:
    return {int(r.value) for r in ing.got}


def _ingest(url, cfg, registry, dead_letters):
    got: list = []
    ing = MqttIngest(url, cfg, registry, got.append, lambda p: "C-1", dead_letters)
    ing.got = got
    ing.start()
    return ing


def test_broker_restart_under_qos1_load_loses_nothing(broker_factory, mqtt_cfg, registry, dead_letters):
    broker = broker_factory()
    ing = _ingest(broker.url, mqtt_cfg, registry, dead_letters)
    pub = persistent_publisher(broker.url)
    n = 3000
    sent = threading.Event()

    def load():
        for seq in range(n):
            dev, body = _payload(seq)
            pub.publish(device_topic(mqtt_cfg.topic_prefix, dev, "telemetry"), body, qos=1)
            if seq % 100 == 99:
                time.sleep(0.01)  # pacing the load over the restart
        sent.set()

    worker = threading.Thread(target=load)
    try:
        worker.start()
        poll(lambda: len(ing.got) >= 500, 20, what="load flowing")
        broker.restart()  # SIGTERM: Mosquitto saves sessions and queued messages, then comes back
        worker.join(30)
        assert sent.is_set()
        poll(lambda: len(_seqs(ing)) == n, 40, what="every message after the restart")
        assert _seqs(ing) == set(range(n))
        assert ing.stats()["rejected"] == 0
    finally:
        ing.stop()
        pub.loop_stop()
        pub.disconnect()


def test_messages_sent_while_ingest_is_down_arrive_after_it_returns(broker_factory, mqtt_cfg, registry, dead_letters):
    broker = broker_factory()
    first = _ingest(broker.url, mqtt_cfg, registry, dead_letters)
    pub = persistent_publisher(broker.url)
    try:
        dev, body = _payload(0)
        pub.publish(device_topic(mqtt_cfg.topic_prefix, dev, "telemetry"), body, qos=1).wait_for_publish(5)
        poll(lambda: _seqs(first) == {0}, what="first message")
        first.stop()  # GridWatch goes down; the broker keeps its session
        infos = []
        for seq in range(1, 1501):
            dev, body = _payload(seq)
            infos.append(pub.publish(device_topic(mqtt_cfg.topic_prefix, dev, "telemetry"), body, qos=1))
        for info in infos:
            info.wait_for_publish(10)  # the broker holds them all
        second = _ingest(broker.url, mqtt_cfg, registry, dead_letters)  # same client id: the session resumes
        try:
            poll(lambda: _seqs(second) == set(range(1, 1501)), 30, what="queued messages delivered")
        finally:
            second.stop()
    finally:
        pub.loop_stop()
        pub.disconnect()
