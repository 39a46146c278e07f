"""Hypothesis fuzzing of MQTT topics and payloads against the real runtime's ``MqttIngest``.

One ``gateway.runtime`` (demo deployment, no cameras, no object model; a unique topic prefix, MQTT
client id and Redis prefix) listens on the system Mosquitto. Each Hypothesis example publishes a
batch of messages, QoS 1, with a valid telemetry reading (a unique ``seq``) before and after every
one of them:

* **certainly bad** messages — bytes that are not JSON, JSON that is not an object, telemetry with no
  usable metric or a non-number value, a payload naming another device, unknown device ids (any
  Unicode a topic level may hold), payloads over ``max_payload_bytes``, alarm envelopes that are not
  JSON / lack a body / name another device / carry a forged signature, malformed status messages.
  Each must appear in the dead-letter stream exactly once, under ``mqtt:{its topic}``, with its payload
  and a reason;
* **signed presses with fuzzed bodies** (signed with the box's real secret, so they pass the
  signature) — each must be answered on the box's ``…/ack`` topic (filed or refused with a reason);
* **well-formed telemetry with odd values** (huge/negative/fractional numbers and timestamps on the
  real metrics) — accepted or refused, whichever, but never by an exception in GridWatch's code.

Everywhere: no ``handler_error`` (that reason means an exception escaped a handler), the ingest stays
connected, and every valid reading interleaved with the bad ones arrives. Bounded: 80 examples of
at most 6 messages, ~12 s (``GRIDWATCH_LONG=1``: 400).
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from alerts.streams import StreamKeys
from ingest.devices.signing import signed_envelope
from tests.fault.support import count_seq_readings, drop_prefix, runtime_deployment, wait_for

pytestmark = pytest.mark.timeout(240)

MQTT_URL = os.environ.get("GRIDWATCH_TEST_MQTT", "mqtt://127.0.0.1:1883")
REDIS_URL = os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
EXAMPLES = 400 if os.environ.get("GRIDWATCH_LONG") == "1" else 80
SENSOR = "smoke-0001"
BOX = "stb-0001"
BOX_SECRET = "demo-stb-0001-secret"
REGISTERED = ("stb-0001", "stb-0002", "smoke-0001", "water-0001", "manhole-0001")
METRICS = {"smoke-0001": "smoke", "water-0001": "level_cm", "manhole-0001": "tilt_deg"}
MAX_PAYLOAD = 64 * 1024


class Live:
    """The running runtime, a publisher on the same broker, and what the test observes of them."""

    def __init__(self, tmp: Path):
        from gateway.runtime import build_runtime

        self.dep = runtime_deployment(tmp, mqtt_url=MQTT_URL, redis_url=REDIS_URL)
        self.prefix = self.dep.ingest.mqtt.topic_prefix
        self.keys = StreamKeys(self.dep.services.stream_prefix)
        self.seen: list[int] = []
        self.rt = build_runtime(self.dep)
        self.rt.start()
        self.redis = redis.Redis.from_url(REDIS_URL)
        port = int(MQTT_URL.rsplit(":", 1)[1])
        self.pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gwfuzz-pub-{uuid.uuid4().hex[:8]}")
        self.acks: list[dict[str, Any]] = []
        self.pub.on_message = lambda c, u, m: self.acks.append(json.loads(m.payload))
        subscribed = threading.Event()
        self.pub.on_subscribe = lambda *a: subscribed.set()
        self.pub.connect("127.0.0.1", port)
        self.pub.loop_start()
        self.pub.subscribe(f"{self.prefix}/devices/{BOX}/ack", qos=1)
        assert subscribed.wait(10)
        self.seq = 0

    def topic(self, device: str, channel: str) -> str:
        return f"{self.prefix}/devices/{device}/{channel}"

    def valid(self) -> tuple[str, bytes, int]:
        self.seq += 1
        return self.topic(SENSOR, "telemetry"), json.dumps({"device": SENSOR, "metrics": {"seq": self.seq}}).encode(), self.seq

    def dead_letters_after(self, last_id: bytes) -> list[dict[str, str]]:
        out = []
        for _id, fields in self.redis.xrange(self.keys.deadletter, min=b"(" + last_id):
            out.append({k.decode(): v.decode() for k, v in fields.items()})
        return out

    def last_dead_letter_id(self) -> bytes:
        last = self.redis.xrevrange(self.keys.deadletter, count=1)
        return last[0][0] if last else b"0-0"

    def close(self) -> None:
        self.pub.loop_stop()
        self.pub.disconnect()
        self.rt.stop()
        self.redis.close()
        drop_prefix(REDIS_URL, self.dep.services.stream_prefix)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        tmp = tmp_path_factory.mktemp("mqttfuzz")
        mp.setenv("YOLO_OFFLINE", "1")
        mp.setenv("YOLO_CONFIG_DIR", str(tmp / "ultralytics"))
        seen = count_seq_readings(mp)
        try:
            state = Live(tmp)
        except Exception as exc:  # pragma: no cover - depends on the machine
            pytest.skip(f"runtime could not start against {MQTT_URL}: {exc}")
        state.seen = seen
        try:
            yield state
        finally:
            state.close()


# ------------------------------------------------------------------------------------------ strategies
def _not_json(b: bytes) -> bool:
    try:
        json.loads(b)
    except (UnicodeDecodeError, ValueError):
        return True
    return False


TOPIC_LEVEL = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/+#\x00"),
                      min_size=1, max_size=24)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                    st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=10)
NOT_JSON = st.binary(min_size=0, max_size=300).filter(_not_json)
NON_OBJECT = JSON.filter(lambda v: not isinstance(v, dict))
NON_NUMBER = st.one_of(st.text(max_size=10), st.none(), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def bad_message(draw) -> tuple[str, str, bytes]:
    """(device, channel, payload) that GridWatch must refuse."""
    case = draw(st.sampled_from(["not_json", "non_object", "no_metric", "non_number", "other_device", "unknown_device",
                                 "oversized", "event_not_json", "event_no_body", "event_other_device", "event_forged",
                                 "status_not_json", "status_bad"]))
    dev = draw(st.sampled_from(("smoke-0001", "water-0001", "manhole-0001")))
    if case == "not_json":
        return dev, "telemetry", draw(NOT_JSON)
    if case == "non_object":
        return dev, "telemetry", json.dumps(draw(NON_OBJECT)).encode()
    if case == "no_metric":
        return dev, "telemetry", json.dumps(draw(st.sampled_from(
            [{"device": dev}, {"metrics": {}}, {"readings": []}, {"metrics": []}, {"readings": [{}]}]))).encode()
    if case == "non_number":
        return dev, "telemetry", json.dumps({"device": dev, "metrics": {METRICS[dev]: draw(NON_NUMBER)}}).encode()
    if case == "other_device":
        other = draw(st.sampled_from([d for d in REGISTERED if d != dev]) | TOPIC_LEVEL.filter(lambda s: s != dev))
        return dev, "telemetry", json.dumps({"device": other, "metrics": {METRICS[dev]: 1}}).encode()
    if case == "unknown_device":
        unknown = draw(TOPIC_LEVEL.filter(lambda s: s not in REGISTERED))
        channel = draw(st.sampled_from(["telemetry", "events", "status"]))
        body = json.dumps({"device": unknown, "metrics": {"smoke": 1}, "online": True}).encode()
        if channel == "events":
            body = json.dumps({"device": unknown, "timestamp": int(time.time()), "nonce": uuid.uuid4().hex,
                               "signature": "0" * 64, "body": json.dumps({"press_id": "p1"})}).encode()
        return unknown, channel, body
    if case == "oversized":
        return dev, draw(st.sampled_from(["telemetry", "events", "status"])), b"x" * draw(st.integers(MAX_PAYLOAD + 1, MAX_PAYLOAD + 4096))
    if case == "event_not_json":
        return BOX, "events", draw(NOT_JSON)
    if case == "event_no_body":
        doc = draw(st.dictionaries(st.sampled_from(["device", "timestamp", "nonce", "signature", "x"]), JSON, max_size=4))
        doc.pop("body", None)
        return BOX, "events", json.dumps(doc).encode()
    if case == "event_other_device":
        return BOX, "events", signed_envelope("stb-0002", "demo-stb-0002-secret",
                                              json.dumps({"press_id": "p-" + uuid.uuid4().hex[:8]}).encode())
    if case == "event_forged":
        body = json.dumps({"press_id": "f-" + uuid.uuid4().hex[:8], "kind": "press"}).encode()
        wrong_secret = draw(st.text(min_size=1, max_size=30).filter(lambda s: s != BOX_SECRET))
        return BOX, "events", signed_envelope(BOX, wrong_secret, body)
    if case == "status_not_json":
        return dev, "status", draw(NOT_JSON.filter(bool))
    doc = draw(st.one_of(NON_OBJECT, st.dictionaries(st.text(max_size=8), JSON, max_size=3).filter(
        lambda d: not isinstance(d.get("online"), bool))))
    return dev, "status", json.dumps(doc).encode()


@st.composite
def signed_press(draw) -> bytes:
    """An authentic envelope (the box's real secret, fresh nonce, current time) around a fuzzed body."""
    body = draw(st.dictionaries(
        st.sampled_from(["press_id", "kind", "reason", "at", "ts", "device", "extra"]),
        st.one_of(JSON, st.sampled_from(["press", "cancel"]), st.just(f"p-{uuid.uuid4().hex[:8]}")), max_size=5))
    if body.get("device") not in (None, BOX):
        body["device"] = BOX  # another device in the body is the 'event_other_device' case
    return signed_envelope(BOX, BOX_SECRET, json.dumps(body).encode())


@st.composite
def odd_telemetry(draw) -> tuple[str, bytes]:
    dev = draw(st.sampled_from(sorted(METRICS)))
    number = st.one_of(st.integers(-10**30, 10**30), st.floats(allow_nan=False, allow_infinity=False))
    doc: dict[str, Any] = {"device": dev, "metrics": {METRICS[dev]: draw(number)}}
    if draw(st.booleans()):  # timestamps a datetime can hold; beyond that see the F-MQTT-2 test below
        doc["ts"] = draw(st.one_of(st.integers(-10**9, 4 * 10**9), st.floats(-1e9, 4e9)))
    if draw(st.booleans()):
        doc["battery"] = draw(number)
    return dev, json.dumps(doc).encode()


MESSAGE = st.one_of(bad_message().map(lambda m: ("bad", m)), signed_press().map(lambda b: ("signed", b)),
                    odd_telemetry().map(lambda m: ("odd", m)))


# ---------------------------------------------------------------------------------------------- test
def test_fuzzed_mqtt_messages_are_dead_lettered_and_never_cost_a_valid_reading(live):
    totals: Counter[str] = Counter()
    handler_errors: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(MESSAGE, min_size=1, max_size=6))
    def run(batch):
        last_dl = live.last_dead_letter_id()
        acks_before = len(live.acks)
        expected_bad: Counter[tuple[str, str]] = Counter()
        valid_seqs: list[int] = []
        signed = 0
        infos = []
        for kind, message in batch:
            topic, payload, seq = live.valid()
            valid_seqs.append(seq)
            infos.append(live.pub.publish(topic, payload, qos=1))
            if kind == "bad":
                device, channel, payload = message
                topic = live.topic(device, channel)
                expected_bad[("mqtt:" + topic, payload[:65536].decode("utf-8", errors="replace"))] += 1
            elif kind == "signed":
                topic, payload, signed = live.topic(BOX, "events"), message, signed + 1
            else:
                topic, payload = live.topic(message[0], "telemetry"), message[1]
            infos.append(live.pub.publish(topic, payload, qos=1))
            totals[kind] += 1
        topic, payload, seq = live.valid()
        valid_seqs.append(seq)
        infos.append(live.pub.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(10)
        n_bad = sum(expected_bad.values())
        # The last valid reading is handled after every telemetry/status message before it (one network
        # thread, in order); alarms go to a pool, so wait for their dead letters and acks as well.
        wait_for(lambda: set(valid_seqs) <= set(live.seen), 15, f"valid readings {valid_seqs}")
        wait_for(lambda: len(live.dead_letters_after(last_dl)) >= n_bad, 15, f"{n_bad} dead letters")
        wait_for(lambda: len(live.acks) - acks_before >= signed, 15, f"{signed} acks to signed presses")
        entries = live.dead_letters_after(last_dl)
        got = Counter((e["source"], e["payload"]) for e in entries)
        missing = expected_bad - got
        assert not missing, f"not dead-lettered: {list(missing)[:3]}"
        for e in entries:
            assert e["reason"], e
            if e["reason"] == "handler_error":
                handler_errors.append(f"{e['source']}: {e['payload'][:200]}")
        assert live.rt.mqtt.connected

    run()
    stats = live.rt.mqtt.stats()
    print(f"[fuzz] mqtt: examples={EXAMPLES} messages={dict(totals)} valid={live.seq} "
          f"rejects={stats['rejects']}")
    assert not handler_errors, "exceptions escaped the handlers for:\n" + "\n".join(handler_errors[:10])


def test_a_millisecond_timestamp_is_refused_as_invalid_payload(live):
    last_dl = live.last_dead_letter_id()
    topic = live.topic("manhole-0001", "telemetry")
    payload = json.dumps({"device": "manhole-0001", "ts": int(time.time() * 1000), "metrics": {"tilt_deg": 40}}).encode()
    live.pub.publish(topic, payload, qos=1).wait_for_publish(10)
    topic_ok, ok, seq = live.valid()
    live.pub.publish(topic_ok, ok, qos=1).wait_for_publish(10)
    wait_for(lambda: seq in live.seen, 15, "the valid reading after it")
    reasons = [e["reason"] for e in live.dead_letters_after(last_dl) if e["source"] == "mqtt:" + topic]
    assert reasons == ["invalid_payload"], reasons
