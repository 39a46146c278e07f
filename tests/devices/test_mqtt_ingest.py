"""MQTT ingest against the real Mosquitto (127.0.0.1:1883) and Redis: telemetry through the rules into
the anomaly stream, every kind of bad input to the dead-letter stream without losing valid messages,
one-key alarms acked with a case number from the real case intake, the HTTPS press handler, and
shared subscriptions splitting the load between two workers."""
from __future__ import annotations

import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alerts.streams import StreamKeys, publish_anomaly
from ingest.anomaly import Anomaly
from detectors.sensor_rules import SensorRuleEngine, alarm_anomaly
from ingest.devices import (
    MqttIngest, PressLedger, RedisNonceStore, device_topic, handle_press, signed_envelope, signed_headers,
)
from ingest.simulator import BoxFleet, telemetry_payload

from .conftest import MQTT_URL, poll

pytestmark = pytest.mark.timeout(60)


def publisher(url: str = MQTT_URL) -> mqtt.Client:
    host, port = url.removeprefix("mqtt://").split(":")
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gwtest-pub-{uuid.uuid4().hex[:8]}")
    c.max_inflight_messages_set(1000)
    c.connect(host, int(port))
    c.loop_start()
    return c


class Collected:
    def __init__(self):
        self.readings, self.alarms, self.status = [], [], []
        self.lock = threading.Lock()

    def reading(self, r):
        with self.lock:
            self.readings.append(r)


@pytest.fixture
def ingest_factory(registry, mqtt_cfg, dead_letters, redis_client, stream_prefix):
    started = []

    def make(on_reading=None, on_alarm=None, cfg=None, suffix=None, on_status=None):
        got = Collected()
        ing = MqttIngest(MQTT_URL, cfg or mqtt_cfg, registry, on_reading or got.reading,
                         on_alarm or (lambda p: "CASE-1"), dead_letters, on_status,
                         nonce_store=RedisNonceStore(redis_client, stream_prefix),
                         ledger=PressLedger(redis_client, stream_prefix), client_suffix=suffix)
        ing.got = got
        ing.start()
        started.append(ing)
        return ing

    yield make
    for ing in started:
        ing.stop()


def test_telemetry_through_rules_to_the_anomaly_stream(ingest_factory, registry, mqtt_cfg, redis_client, stream_prefix):
    keys = StreamKeys(stream_prefix)
    engine = SensorRuleEngine(registry, lambda a: publish_anomaly(redis_client, keys, a))
    ing = ingest_factory(on_reading=engine.on_reading)
    pub = publisher()
    try:
        dev = registry.get("smoke-1")
        cfg = type("C", (), {"id": "smoke-1", "type": "smoke"})
        for seq, crossing in enumerate([False, False, True, True, False]):
            pub.publish(device_topic(mqtt_cfg.topic_prefix, "smoke-1", "telemetry"), telemetry_payload(cfg, seq, crossing, battery=77), qos=1)
        poll(lambda: ing.stats()["readings"] >= 10, what="10 readings")
        kinds = [(a.kind, a.state) for a in (Anomaly.from_stream(f) for _, f in redis_client.xrange(keys.anomalies))]
        assert kinds == [("smoke_alarm", "firing"), ("smoke_alarm", "cleared")]
        assert dev.battery == 77 and dev.online and time.time() - dev.last_seen < 30
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_bad_input_is_dead_lettered_and_never_costs_a_valid_message(ingest_factory, registry, mqtt_cfg, dead_letters):
    ing = ingest_factory()
    pub = publisher()
    t = lambda dev, ch="telemetry": device_topic(mqtt_cfg.topic_prefix, dev, ch)  # noqa: E731
    secret = registry.secret_for("stb-1")
    now = int(time.time())
    body = lambda pid: json.dumps({"device": "stb-1", "press_id": pid}).encode()  # noqa: E731
    replayed = signed_envelope("stb-1", secret, body("r1"), now, "nonce-replay-1")
    bad = [
        (t("smoke-1"), b"{oops", "malformed_json"),
        (t("smoke-1"), b'{"device":"smoke-1","metrics":{"smoke":"lots"}}', "invalid_payload"),
        (t("ghost-9"), b'{"device":"ghost-9","metrics":{"smoke":1}}', "unknown_device"),
        (t("gas-1"), b'{"device":"smoke-1","metrics":{"gas_lel":50}}', "topic_device_mismatch"),
        (t("smoke-1"), b'{"device":"smoke-1","metrics":{"smoke":1},"pad":"' + b"x" * 70_000 + b'"}', "oversized_payload"),
        (t("stb-1", "events"), signed_envelope("stb-1", "wrong-secret", body("b1"), now, "nonce-bad-1"), "bad_signature"),
        (t("stb-1", "events"), replayed, None),  # first use is valid
        (t("stb-1", "events"), replayed, "replayed_nonce"),
        (t("stb-1", "events"), signed_envelope("stb-1", secret, body("o1"), now - 3600, "nonce-old-1"), "timestamp_out_of_window"),
        (t("stb-2", "events"), signed_envelope("stb-1", secret, body("m1"), now, "nonce-mis-1"), "topic_device_mismatch"),
        (t("stb-1", "events"), b"[]", "malformed"),
        (t("stb-1", "status"), b'{"online":"yes"}', "invalid_payload"),
    ]
    try:
        for i, (topic, payload, _) in enumerate(bad):
            pub.publish(topic, payload, qos=1)
            # a valid reading after every bad message: none of them may be lost
            pub.publish(t("water-1"), json.dumps({"device": "water-1", "seq": i, "metrics": {"level_cm": 5.0 + i}}).encode(), qos=1)
        expected = [r for _, _, r in bad if r]
        poll(lambda: len(dead_letters.reasons()) >= len(expected) and len(ing.got.readings) >= len(bad), what="all handled")
        assert sorted(dead_letters.reasons()) == sorted(expected)
        assert sorted(r.value for r in ing.got.readings) == [5.0 + i for i in range(len(bad))]
        stats = ing.stats()
        assert stats["rejected"] == len(expected) and stats["press_received"] == 1
        entry = dead_letters.entries()[0]
        assert entry["source"].startswith("mqtt:") and entry["payload"] == "{oops"
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_press_is_acked_with_a_case_number_within_a_second(ingest_factory, registry, mqtt_cfg, sqlite_intake):
    intake = sqlite_intake
    filed = []

    def on_alarm(press):
        ref = intake.file(alarm_anomaly(press, registry.get(press.device_id), []))
        filed.append((press.kind, ref))
        return ref.number

    ing = ingest_factory(on_alarm=on_alarm)
    boxes = [registry.get("stb-1"), registry.get("stb-2")]
    from ingest.config import DeviceConfig
    cfgs = [DeviceConfig(id=b.id, type="set_top_box", location=b.location, secret=registry.secret_for(b.id)) for b in boxes]
    fleet = BoxFleet(MQTT_URL, cfgs, topic_prefix=mqtt_cfg.topic_prefix, connections=2)
    fleet.start()
    try:
        first = fleet.press("stb-1", "press-0001")
        second = fleet.press("stb-2", "press-0002")
        report = fleet.wait(deadline_s=5)
        assert report.acked == 2 and report.statuses == {"received": 2}
        assert all(lat < 1.0 for lat in report.latencies_s), report.latencies_s
        assert first.case and first.case.startswith("QS") and second.case != first.case
        # the same press again (the box retried): same case, nothing new filed
        again = fleet.press("stb-1", "press-0001")
        fleet.wait(deadline_s=5)
        assert (again.status, again.case) == ("duplicate", first.case)
        # 误按: cancel it with a reason; intake hears the cancel with the case number
        cancel = fleet.press("stb-1", "press-0001", kind="cancel", reason="误按")
        fleet.wait(deadline_s=5)
        assert cancel.status == "cancelled"
        assert [k for k, _ in filed] == ["press", "press", "cancel"]
        assert ing.stats()["press_received"] == 2
    finally:
        fleet.stop()


def test_https_press_handler(registry, redis_client, stream_prefix, dead_letters):
    nonces, ledger = RedisNonceStore(redis_client, stream_prefix), PressLedger(redis_client, stream_prefix)
    cases = iter(range(100, 200))
    kw = dict(nonce_store=nonces, ledger=ledger, on_alarm=lambda p: f"QS-{next(cases)}", on_reject=dead_letters)
    body = json.dumps({"device": "stb-2", "press_id": "h-1", "at": time.time()}).encode()
    headers = signed_headers("stb-2", registry.secret_for("stb-2"), body)
    ok = handle_press(registry, body, headers, **kw)
    assert (ok.http_status, ok.body["status"], ok.body["case"]) == (200, "received", "QS-100")
    assert handle_press(registry, body, headers, **kw).http_status == 409  # replay
    retry_headers = signed_headers("stb-2", registry.secret_for("stb-2"), body)  # re-signed retry
    retry = handle_press(registry, body, retry_headers, **kw)
    assert (retry.body["status"], retry.body["case"]) == ("duplicate", "QS-100")
    forged = handle_press(registry, body, {**signed_headers("stb-2", "guess", body)}, **kw)
    assert forged.http_status == 401 and "case" not in forged.body
    stale = handle_press(registry, body, signed_headers("stb-2", registry.secret_for("stb-2"), body, int(time.time()) - 999), **kw)
    assert stale.http_status == 401 and stale.body["reason"] == "timestamp_out_of_window" and "server_time" in stale.body
    assert handle_press(registry, b"x" * 70_000, headers, **kw).http_status == 413
    bad_body = json.dumps({"device": "stb-2", "press_id": "no spaces allowed"}).encode()
    assert handle_press(registry, bad_body, signed_headers("stb-2", registry.secret_for("stb-2"), bad_body), **kw).http_status == 400
    # intake down: the box is told to retry, and a retry passes once intake is back
    down = dict(kw, on_alarm=lambda p: (_ for _ in ()).throw(ConnectionError("db down")))
    body2 = json.dumps({"device": "stb-2", "press_id": "h-2"}).encode()
    fail = handle_press(registry, body2, signed_headers("stb-2", registry.secret_for("stb-2"), body2), **down)
    assert fail.http_status == 503 and fail.body["retry"] is True
    back = handle_press(registry, body2, signed_headers("stb-2", registry.secret_for("stb-2"), body2), **kw)
    assert back.body["status"] == "received"
    assert sorted(dead_letters.reasons()) == sorted(["replayed_nonce", "bad_signature", "timestamp_out_of_window",
                                                     "oversized_payload", "invalid_payload"])


def test_shared_subscription_splits_the_load(ingest_factory, mqtt_cfg):
    a = ingest_factory(suffix="a")
    b = ingest_factory(suffix="b")
    pub = publisher()
    try:
        n = 400
        for i in range(n):
            dev = ("smoke-1", "gas-1", "door-1", "fence-1")[i % 4]
            pub.publish(device_topic(mqtt_cfg.topic_prefix, dev, "telemetry"),
                        json.dumps({"device": dev, "seq": i, "metrics": {"x": i}}).encode(), qos=1)
        poll(lambda: len(a.got.readings) + len(b.got.readings) >= n, what=f"{n} readings")
        values = sorted(r.value for r in a.got.readings + b.got.readings)
        assert values == [float(i) for i in range(n)]  # every message exactly once across the group
        assert a.got.readings and b.got.readings  # and both workers took a share
    finally:
        pub.loop_stop()
        pub.disconnect()
