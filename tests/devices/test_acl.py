"""The generated Mosquitto password and ACL files on a real Mosquitto: each device may publish only
under its own topics and read only its own downlink; GridWatch's service account reads everything."""
from __future__ import annotations

import json
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.devices import MqttIngest, device_topic, mqtt_password, write_mosquitto_auth

from .conftest import poll

pytestmark = pytest.mark.timeout(60)


def login(url: str, user: str, password: str) -> tuple[mqtt.Client, object]:
    port = int(url.rsplit(":", 1)[1])
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gwtest-{user}-{uuid.uuid4().hex[:6]}")
    c.username_pw_set(user, password)
    result: dict = {}
    done = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: (result.setdefault("rc", rc), done.set())
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(10)
    return c, result["rc"]


def test_generated_auth_confines_each_device_to_its_topics(tmp_path, broker_factory, registry, mqtt_cfg, dead_letters):
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    counts = write_mosquitto_auth(registry, passwd, acl, topic_prefix=mqtt_cfg.topic_prefix,
                                  service_users={"gridwatch-ingest": "ingest-pass"})
    assert counts == {"devices": len(registry), "services": 1}
    assert passwd.stat().st_mode & 0o777 == 0o600
    secret = registry.secret_for("smoke-1")
    assert secret not in passwd.read_text() and mqtt_password(secret) not in passwd.read_text()
    broker = broker_factory(passwd=passwd, acl=acl)

    got: list = []
    cfg = mqtt_cfg.model_copy(update={"username": "gridwatch-ingest", "password": "ingest-pass"})
    ing = MqttIngest(broker.url, cfg, registry, got.append, lambda p: "C-1", dead_letters)
    ing.start()
    clients = []
    try:
        bad, rc = login(broker.url, "smoke-1", "wrong")
        clients.append(bad)
        assert rc.is_failure
        anon, rc = login(broker.url, "", "")
        clients.append(anon)
        assert rc.is_failure

        dev, rc = login(broker.url, "smoke-1", mqtt_password(secret))
        clients.append(dev)
        assert not rc.is_failure
        prefix = mqtt_cfg.topic_prefix
        # publishing as gas-1 (ACL drops it), then a sentinel on its own topic over the same connection
        dev.publish(device_topic(prefix, "gas-1", "telemetry"), json.dumps({"device": "gas-1", "metrics": {"gas_lel": 99}}), qos=1)
        dev.publish(device_topic(prefix, "smoke-1", "telemetry"), json.dumps({"device": "smoke-1", "metrics": {"smoke": 1}}), qos=1)
        poll(lambda: got, what="the device's own message")
        assert [(r.device_id, r.metric) for r in got] == [("smoke-1", "smoke")]

        # downlink: a device may subscribe to another box's acks (Mosquitto 2.0 grants the filter) but the
        # read ACL withholds every message; its own arrive. The sentinel is sent last on the same connection.
        inbox: list = []
        subscribed = threading.Event()
        dev.on_message = lambda c, u, m: inbox.append(m.topic)
        dev.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        dev.subscribe([(device_topic(prefix, "stb-1", "notify"), 1), (device_topic(prefix, "smoke-1", "notify"), 1)])
        assert subscribed.wait(10)
        ing.notify("stb-1", {"case": "QS-secret", "status": "dispatched"})
        ing.notify("smoke-1", {"case": "QS-1", "status": "closed"})
        poll(lambda: inbox, what="the device's own notification")
        assert inbox == [device_topic(prefix, "smoke-1", "notify")]
    finally:
        for c in clients:
            c.loop_stop()
            c.disconnect()
        ing.stop()
