"""Registry (secrets stay secret, coordinates become WGS-84), payload codecs (incl. an entry-point
plug-in) and the alarm signature with a nonce store on the real Redis."""
from __future__ import annotations

import json
import logging
import sys
import textwrap
import time

import pytest

from ingest.devices import (
    DeviceRegistry, RedisNonceStore, SignatureError, available_codecs, get_codec, sign, signed_headers,
    telemetry_readings, verify_signed,
)
from ingest.devices.codecs import CodecError, reload_entry_points
from ingest.geo import GeoPoint

from .conftest import device

pytestmark = pytest.mark.timeout(30)


def test_registry_hides_secret_and_converts_location(caplog):
    reg = DeviceRegistry([device("stb-9", "set_top_box", location=GeoPoint(lon=120.1102, lat=30.2785, crs="GCJ02"))])
    dev = reg.get("stb-9")
    assert dev.location.crs == "WGS84" and abs(dev.location.lon - 120.1102) > 1e-4  # GCJ-02 offset removed
    secret = reg.secret_for("stb-9")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("device %r %s", dev, dev)
    for text in (repr(dev), str(dev), json.dumps(dev.public()), repr(reg.all()), caplog.text):
        assert secret not in text
    assert dev.public()["has_secret"] is True
    with pytest.raises(TypeError):
        json.dumps(dev.secret)


def test_registry_runtime_changes_keep_live_state():
    reg = DeviceRegistry([device("smoke-9")])
    events = []
    reg.subscribe(lambda i, d: events.append((i, d is not None)))
    reg.touch("smoke-9", 100.0, battery=55)
    reg.upsert(device("smoke-9", address="moved"))
    dev = reg.get("smoke-9")
    assert (dev.address, dev.last_seen, dev.battery, dev.online) == ("moved", 100.0, 55, True)
    assert reg.touch("nope", 1.0) is None
    assert reg.remove("smoke-9") and not reg.remove("smoke-9")
    assert events == [("smoke-9", True), ("smoke-9", False)]


def test_json_and_kv_codecs_give_readings():
    t = 1767225600.0  # 2026-01-01 UTC
    doc = get_codec("json")("telemetry", b'{"device":"d1","ts":1767225600,"battery":80,"metrics":{"smoke":1.5,"alarm":true}}')
    readings, battery = telemetry_readings(doc, "d1", t + 1)
    assert battery == 80 and {(r.metric, r.value, r.at, r.received_at) for r in readings} == {
        ("smoke", 1.5, t, t + 1), ("alarm", 1.0, t, t + 1), ("battery", 80.0, t, t + 1)}
    kv = get_codec("kv")("telemetry", b"device=d1;ts=1767225602;tilt_deg=3.5")
    assert [(r.metric, r.value) for r in telemetry_readings(kv, "d1", t + 3)[0]] == [("tilt_deg", 3.5)]
    batch = {"device": "d1", "readings": [{"ts": t, "metrics": {"x": 1}}, {"ts": t + 1, "metrics": {"x": 2}}]}
    assert [r.at for r in telemetry_readings(batch, "d1", t + 2)[0]] == [t, t + 1]
    millis = {"device": "d1", "ts": t * 1000, "metrics": {"x": 1}}  # a device sending milliseconds is refused
    with pytest.raises(CodecError, match="not Unix seconds"):
        telemetry_readings(millis, "d1", t)


@pytest.mark.parametrize("payload,reason", [
    (b"{not json", "malformed_json"),
    (b"[1,2]", "invalid_payload"),
    (b'{"device":"d1","metrics":{"smoke":"high"}}', "invalid_payload"),
    (b'{"device":"d1","metrics":{"smoke":NaN}}', "invalid_payload"),
    (b'{"device":"d1","ts":"yesterday","metrics":{"smoke":1}}', "invalid_payload"),
    (b'{"device":"d1","metrics":{}}', "invalid_payload"),
    (b'{"device":"d2","metrics":{"smoke":1}}', "topic_device_mismatch"),
    (b'{"device":7,"metrics":{"smoke":1}}', "invalid_payload"),
])
def test_bad_telemetry_is_refused_with_a_reason(payload, reason):
    with pytest.raises(CodecError) as err:
        telemetry_readings(get_codec("json")("telemetry", payload), "d1", 1.0)
    assert err.value.reason == reason


def test_vendor_codec_from_an_entry_point(tmp_path, monkeypatch):
    """A codec shipped by another package is found through the ``gridwatch.codecs`` entry-point group."""
    pkg = tmp_path / "acme_codec.py"
    pkg.write_text(textwrap.dedent('''
        def decode(channel, payload):
            device, value = payload.decode().split(",")
            return {"device": device, "metrics": {"level_cm": float(value)}}
    '''))
    dist = tmp_path / "acme_codec-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-codec\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[gridwatch.codecs]\nacme = acme_codec:decode\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reload_entry_points()
    try:
        assert "acme" in available_codecs()
        readings, _ = telemetry_readings(get_codec("acme")("telemetry", b"water-1,42.5"), "water-1", 1.0)
        assert [(r.metric, r.value) for r in readings] == [("level_cm", 42.5)]
    finally:
        sys.modules.pop("acme_codec", None)
        reload_entry_points()
    with pytest.raises(CodecError):
        get_codec("no-such-codec")


@pytest.fixture
def nonces(redis_client, stream_prefix):
    return RedisNonceStore(redis_client, stream_prefix)


def _signed(reg, dev_id="stb-1", body=None, ts=None, nonce="nonce-0001"):
    body = body or json.dumps({"device": dev_id, "press_id": "p1"}).encode()
    headers = signed_headers(dev_id, reg.secret_for(dev_id), body, ts or int(time.time()), nonce)
    return body, headers


def test_signature_round_trip_and_each_refusal(registry, nonces, redis_client, stream_prefix):
    now = time.time()
    body, headers = _signed(registry, nonce="nonce-aaaa1")
    doc = verify_signed(registry, body, headers, now, nonces)
    assert doc["device"] == "stb-1" and doc["press_id"] == "p1"

    def reason(body, headers, at=now):
        with pytest.raises(SignatureError) as err:
            verify_signed(registry, body, headers, at, nonces)
        return err.value.reason

    # replay: the same signed request again, and from a second process sharing the Redis nonce memory
    assert reason(body, headers) == "replayed_nonce"
    assert reason(body, headers) == "replayed_nonce"
    other_process = RedisNonceStore(redis_client, stream_prefix)
    with pytest.raises(SignatureError):
        verify_signed(registry, body, headers, now, other_process)
    # tampered body, wrong key, unknown device, stale or future timestamp, malformed fields
    body2, headers2 = _signed(registry, nonce="nonce-bbbb2")
    assert reason(body2.replace(b"p1", b"p2"), headers2) == "bad_signature"
    forged = {**headers2, **sign("not-the-key", body2, int(now), "nonce-cccc3"), "X-GW-Device": "stb-1"}
    assert reason(body2, forged) == "bad_signature"
    assert reason(*_signed(registry, nonce="nonce-dddd4")[:1], {**headers2, "X-GW-Device": "ghost"}) == "malformed"
    ghost_body = json.dumps({"device": "ghost", "press_id": "p"}).encode()
    assert reason(ghost_body, {**sign("k", ghost_body, int(now), "nonce-eeee5"), "X-GW-Device": "ghost"}) == "unknown_device"
    assert reason(*_signed(registry, ts=int(now) - 120, nonce="nonce-ffff6")) == "timestamp_out_of_window"
    assert reason(*_signed(registry, ts=int(now) + 120, nonce="nonce-gggg7")) == "timestamp_out_of_window"
    assert reason(b"not json", signed_headers("stb-1", "k", b"not json")) == "malformed"
    assert reason(body2, {**headers2, "X-GW-Timestamp": "soon"}) == "malformed"
    assert reason(body2, {**headers2, "X-GW-Nonce": "x"}) == "malformed"
    # a forged request did not burn the box's nonce: the genuine one still passes
    assert verify_signed(registry, body2, headers2, now, nonces)["press_id"] == "p1"
    # plain field names (the MQTT envelope) work as well as headers
    body3, h3 = _signed(registry, nonce="nonce-hhhh8")
    fields = {"device": "stb-1", "timestamp": int(h3["X-GW-Timestamp"]), "nonce": h3["X-GW-Nonce"], "signature": h3["X-GW-Signature"]}
    assert verify_signed(registry, body3, fields, now, nonces)["device"] == "stb-1"
