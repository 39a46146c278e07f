"""Set-top-box attacks over MQTT against the real runtime, and the broker ACLs ``gridwatch mqtt-acl`` writes.

Part 1 — the runtime's ``MqttIngest`` (demo deployment: no cameras, no object model; unique topic and
Redis prefixes on the system Mosquitto) and a real box's secret: a genuine press is filed and acked
once; then a forged signature, the captured press replayed verbatim, a correctly signed press with
a stale and with a future timestamp, and another box publishing on this box's topic (its own genuine
envelope, an envelope without a device name, a body naming itself). Each attack: no ticket, no case
in any ack, and one dead letter with the expected reason.

Part 2 — a Mosquitto of the test's own configured only by ``python -m gateway.cli mqtt-acl`` (password
file + ACL for ``config/demo.yaml``), ``allow_anonymous false``: device A publishes under device B's
telemetry, events and status topics, then a sentinel under its own; an observer account (added by
the test, read-only on every device topic) sees the sentinel and **nothing** on B's topics.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from alerts.streams import StreamKeys
from ingest.devices.acl import mosquitto_hash, mqtt_password
from ingest.devices.signing import signed_envelope
from tests.fault.support import REPO, OwnMosquitto, drop_prefix, runtime_deployment, wait_for

pytestmark = pytest.mark.timeout(120)

MQTT_URL = os.environ.get("GRIDWATCH_TEST_MQTT", "mqtt://127.0.0.1:1883")
REDIS_URL = os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
DEMO = REPO / "config" / "demo.yaml"
SECRETS = {"stb-0001": "demo-stb-0001-secret", "stb-0002": "demo-stb-0002-secret",
           "smoke-0001": "demo-smoke-0001", "water-0001": "demo-water-0001"}


def client(port: int, user: str | None = None, password: str | None = None) -> tuple[mqtt.Client, Any]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gwsec-{uuid.uuid4().hex[:8]}")
    if user is not None:
        c.username_pw_set(user, password)
    result: dict[str, Any] = {}
    done = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: (result.setdefault("rc", rc), done.set())
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(10), "no CONNACK"
    return c, result["rc"]


def close(c: mqtt.Client) -> None:
    c.loop_stop()
    c.disconnect()


# ----------------------------------------------------------------------------------------- part 1
class Box:
    """The runtime, a box's MQTT connection with its ack inbox, and the ticket count."""

    def __init__(self, tmp: Path):
        from gateway.runtime import build_runtime

        self.dep = runtime_deployment(tmp, mqtt_url=MQTT_URL, redis_url=REDIS_URL)
        self.prefix = self.dep.ingest.mqtt.topic_prefix
        self.keys = StreamKeys(self.dep.services.stream_prefix)
        self.rt = build_runtime(self.dep)
        self.rt.start()
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.acks: list[dict[str, Any]] = []
        self.mqtt, _ = client(int(MQTT_URL.rsplit(":", 1)[1]))
        self.mqtt.on_message = lambda c, u, m: self.acks.append({"topic": m.topic, **json.loads(m.payload)})
        subscribed = threading.Event()
        self.mqtt.on_subscribe = lambda *a: subscribed.set()
        self.mqtt.subscribe(f"{self.prefix}/devices/+/ack", qos=1)
        assert subscribed.wait(10)

    def topic(self, device: str) -> str:
        return f"{self.prefix}/devices/{device}/events"

    def send(self, device_topic: str, envelope: bytes) -> None:
        self.mqtt.publish(self.topic(device_topic), envelope, qos=1).wait_for_publish(10)

    def tickets(self) -> int:
        from alerts.models import Ticket

        with self.rt.store.read() as s:
            return int(s.scalar(select(func.count()).select_from(Ticket)))

    def dead_letters(self) -> list[dict[str, str]]:
        return [{k.decode(): v.decode() for k, v in f.items()} for _, f in self.redis.xrange(self.keys.deadletter)]

    def close(self) -> None:
        close(self.mqtt)
        self.rt.stop()
        self.redis.close()
        drop_prefix(REDIS_URL, self.dep.services.stream_prefix)


@pytest.fixture
def box(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    state = Box(tmp_path)
    try:
        yield state
    finally:
        state.close()


def body(press_id: str, device: str | None = "stb-0001") -> bytes:
    doc = {"press_id": press_id, "kind": "press", "reason": "有人摔倒"}
    if device:
        doc["device"] = device
    return json.dumps(doc, ensure_ascii=False).encode()


def test_set_top_box_signature_replay_timestamp_and_topic_attacks(box):
    genuine = signed_envelope("stb-0001", SECRETS["stb-0001"], body("p-genuine"))
    box.send("stb-0001", genuine)
    # the box is told 'queued' at once, then its case (docs/INTEGRATORS.md)
    ack = wait_for(lambda: next((a for a in box.acks if a.get("press_id") == "p-genuine" and a.get("case")), None), 15,
                   "the case of the genuine press")
    assert ack["status"] == "received", ack
    assert box.tickets() == 1

    now = int(time.time())
    stb2_own = signed_envelope("stb-0002", SECRETS["stb-0002"], body("p-b2", "stb-0002"))
    no_device = json.loads(signed_envelope("stb-0002", SECRETS["stb-0002"], body("p-b3", None)))
    no_device.pop("device")
    attacks = [  # (name, topic device, envelope, expected reason)
        ("forged signature", "stb-0001", signed_envelope("stb-0001", "guessed-secret", body("p-forged")), "bad_signature"),
        ("replayed nonce", "stb-0001", genuine, "replayed_nonce"),
        ("stale timestamp", "stb-0001", signed_envelope("stb-0001", SECRETS["stb-0001"], body("p-stale"), timestamp=now - 600),
         "timestamp_out_of_window"),
        ("future timestamp", "stb-0001", signed_envelope("stb-0001", SECRETS["stb-0001"], body("p-future"), timestamp=now + 600),
         "timestamp_out_of_window"),
        ("another box's genuine envelope on this box's topic", "stb-0001", stb2_own, "topic_device_mismatch"),
        ("another box's envelope without a device name", "stb-0001", json.dumps(no_device).encode(), "bad_signature"),
        ("another box's body naming itself, no envelope device", "stb-0001",
         json.dumps({k: v for k, v in json.loads(stb2_own).items() if k != "device"}).encode(), "topic_device_mismatch"),
        ("the genuine press replayed on another box's topic", "stb-0002", genuine, "topic_device_mismatch"),
    ]
    for _name, device, envelope, _reason in attacks:
        box.send(device, envelope)
    # A last genuine press from the other box: handled after every attack above has been (alarms are taken in order
    # of arrival by a small pool, so wait for the dead letters too).
    box.send("stb-0002", signed_envelope("stb-0002", SECRETS["stb-0002"], body("p-last", "stb-0002")))
    wait_for(lambda: any(a.get("press_id") == "p-last" and a.get("case") for a in box.acks), 15,
             "the case of the last genuine press")
    wait_for(lambda: len(box.dead_letters()) >= len(attacks), 15, f"{len(attacks)} dead letters")

    letters = box.dead_letters()
    got = sorted((d["source"].rsplit("/", 2)[-2], d["reason"]) for d in letters)
    expected = sorted((device, reason) for _n, device, _e, reason in attacks)
    assert got == expected, f"dead letters {got} != expected {expected}"
    assert box.tickets() == 2, "an attack filed a ticket"
    attack_acks = [a for a in box.acks if a.get("press_id") not in ("p-genuine", "p-last")]
    assert all(not a.get("case") and a.get("status") == "rejected" for a in attack_acks), attack_acks
    # The only answers to attackers: the two authentic but mistimed presses get 'rejected' with the server time
    # (so a box with a wrong clock can fix it); nothing else is answered.
    assert [(a["topic"].rsplit("/", 2)[-2], a.get("reason")) for a in attack_acks] == [
        ("stb-0001", "timestamp_out_of_window")] * 2, attack_acks
    assert all("server_time" in a for a in attack_acks)
    # the genuine press's own two answers and nothing for its replay (answered, it would read 'duplicate' or 'queued')
    genuine_answers = [a["status"] for a in box.acks if a.get("press_id") == "p-genuine" and a["status"] != "received"]
    assert genuine_answers == ["queued"], f"the replay was answered: {genuine_answers}"


# ----------------------------------------------------------------------------------------- part 2
INGEST_PASSWORD = "ingest-" + uuid.uuid4().hex[:12]


def deployment_with_ingest_account(tmp: Path) -> Path:
    """config/demo.yaml with the ingest service's own broker account (``ingest.mqtt.username/password``)."""
    text = DEMO.read_text(encoding="utf-8")
    text = text.replace("file: grids/qingshui.geojson", f"file: {DEMO.parent / 'grids' / 'qingshui.geojson'}")
    text = text.replace("footage_dir: ../../shared/footage", f"footage_dir: {REPO.parent / 'shared' / 'footage'}\n"
                        f"  mqtt: {{username: gridwatch-ingest, password: {INGEST_PASSWORD}}}", 1)
    path = tmp / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def acl_broker(tmp_path):
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    config = deployment_with_ingest_account(tmp_path)
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "mqtt-acl", "--config", str(config), "--passwd", str(passwd),
                          "--acl", str(acl)], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.returncode == 0, run.stderr[-2000:]
    for secret in SECRETS.values():  # the broker holds derived passwords only, never a signing secret
        assert secret not in passwd.read_text() and secret not in acl.read_text()
    assert INGEST_PASSWORD not in passwd.read_text()
    # An observer account of the test's own (read-only on every device topic), to see what the broker lets through.
    observer_pw = uuid.uuid4().hex
    with passwd.open("a", encoding="utf-8") as f:
        f.write(f"gwsec-observer:{mosquitto_hash(observer_pw)}\n")
    with acl.open("a", encoding="utf-8") as f:
        f.write("\nuser gwsec-observer\ntopic read gridwatch/v1/devices/#\n")
    broker = OwnMosquitto(tmp_path, extra_conf=f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n")
    broker.start()
    try:
        yield broker, observer_pw, config
    finally:
        broker.stop()


def test_mqtt_acl_from_the_cli_stops_a_device_publishing_as_another(acl_broker):
    broker, observer_pw, _config = acl_broker
    clients: list[mqtt.Client] = []
    try:
        anon, rc = client(broker.port)
        clients.append(anon)
        assert rc.is_failure, "anonymous login accepted"
        wrong, rc = client(broker.port, "smoke-0001", mqtt_password("guessed"))
        clients.append(wrong)
        assert rc.is_failure, "wrong password accepted"
        secret_as_pw, rc = client(broker.port, "smoke-0001", SECRETS["smoke-0001"])
        clients.append(secret_as_pw)
        assert rc.is_failure, "the signing secret itself works as the broker password"

        observer, rc = client(broker.port, "gwsec-observer", observer_pw)
        clients.append(observer)
        assert not rc.is_failure
        seen: list[tuple[str, bytes]] = []
        subscribed = threading.Event()
        observer.on_message = lambda c, u, m: seen.append((m.topic, m.payload))
        observer.on_subscribe = lambda *a: subscribed.set()
        observer.subscribe("gridwatch/v1/devices/#", qos=1)
        assert subscribed.wait(10)

        attacker, rc = client(broker.port, "smoke-0001", mqtt_password(SECRETS["smoke-0001"]))
        clients.append(attacker)
        assert not rc.is_failure
        forged = [
            ("gridwatch/v1/devices/water-0001/telemetry", json.dumps({"device": "water-0001", "metrics": {"level_cm": 99}})),
            ("gridwatch/v1/devices/water-0001/status", json.dumps({"online": False})),
            ("gridwatch/v1/devices/stb-0001/events", signed_envelope("stb-0001", "guessed", body("p-acl")).decode()),
            ("gridwatch/v1/devices/stb-0001/ack", json.dumps({"press_id": "p-acl", "status": "ok", "case": "QS-FAKE"})),
            ("gridwatch/v1/devices/smoke-0001/notify", json.dumps({"case": "QS-FAKE"})),  # downlink of its own: read-only
        ]
        for topic, payload in forged:
            attacker.publish(topic, payload, qos=1).wait_for_publish(10)
        sentinel = "gridwatch/v1/devices/smoke-0001/telemetry"
        attacker.publish(sentinel, json.dumps({"device": "smoke-0001", "metrics": {"smoke": 0}}), qos=1).wait_for_publish(10)
        wait_for(lambda: any(t == sentinel for t, _ in seen), 10, "the device's own message")
        leaked = [t for t, _ in seen if t != sentinel]
        assert leaked == [], f"the broker let these through: {leaked}"
        # Still connected after the refused publishes (Mosquitto 2 drops them silently under MQTT 3.1.1).
        assert attacker.is_connected()
    finally:
        for c in clients:
            close(c)


def test_the_runtime_ingest_logs_in_to_a_broker_configured_by_the_cli(acl_broker, tmp_path):
    from gateway.config import load_deployment
    from ingest.devices import DeviceRegistry, MqttIngest

    broker, _observer_pw, config = acl_broker
    dep = load_deployment(config)
    assert dep.ingest.mqtt.username == "gridwatch-ingest"
    cfg = dep.ingest.mqtt.model_copy(update={"client_id": f"gwsec-ingest-{uuid.uuid4().hex[:8]}"})
    ingest = MqttIngest(broker.url, cfg, DeviceRegistry(dep.devices), on_reading=lambda r: None,
                        on_alarm=lambda p: None, on_reject=lambda *a: None)
    try:
        ingest.start(wait_s=5)
    except ConnectionError as exc:
        raise AssertionError(str(exc)) from None
    finally:
        ingest.stop()
