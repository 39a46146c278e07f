"""Device simulator (``gridwatch simulate``): sensors sending telemetry and set-top boxes pressing the
one-key alarm, against a real MQTT broker (and, for presses, optionally a gateway's HTTPS endpoint).

It is what the demo, the tests and the benchmark use to make traffic, so it speaks exactly the
documented protocol: topics from :mod:`ingest.devices.topics`, JSON telemetry, signed press
envelopes from :mod:`ingest.devices.signing`, acks on ``…/ack``. A box that gets no ack within
``ack_timeout_s`` re-signs its press with a fresh nonce and the same ``press_id`` and sends it again.

Devices come from a deployment file (``--config``, its ``devices`` section) or are generated
(``--sensors N --boxes M``) with secrets derived from ``--seed``, so the GridWatch side can register
the same devices with :func:`simulated_devices`.

Examples::

    gridwatch simulate --config config/demo.yaml --duration 60 --rate 0.5 --cross-thresholds --presses 2
    gridwatch simulate --sensors 200 --boxes 50 --rate 5 --duration 30 --presses 50 --json
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import random
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.config import DeviceConfig
from ingest.devices.acl import mqtt_password
from ingest.devices.mqtt_ingest import parse_mqtt_url
from ingest.devices.signing import signed_envelope, signed_headers
from ingest.devices.topics import device_topic
from ingest.geo import GeoPoint

SENSOR_TYPES = ("smoke", "gas", "water_level", "manhole_tilt", "door", "fence")

# (metric, normal value, value that crosses the profile's threshold)
_METRICS: dict[str, list[tuple[str, float, float]]] = {
    "smoke": [("smoke", 0.5, 12.0)],
    "gas": [("gas_lel", 2.0, 35.0)],
    "water_level": [("level_cm", 8.0, 45.0)],
    "manhole_tilt": [("tilt_deg", 1.0, 25.0)],
    "door": [("open", 0.0, 1.0)],
    "fence": [("vibration", 0.0, 1.0), ("breach", 0.0, 1.0)],
    "generic": [("value", 1.0, 1.0)],
}


def _secret(seed: str, device_id: str) -> str:
    return hmac.new(seed.encode(), device_id.encode(), hashlib.sha256).hexdigest()[:32]


def simulated_devices(sensors: int, boxes: int, seed: str = "gridwatch-sim", prefix: str = "sim",
                      center: tuple[float, float] = (120.12, 30.265), spread_deg: float = 0.015) -> list[DeviceConfig]:
    """Deterministic fake devices (ids, places, secrets) both the simulator and GridWatch can build."""
    rng = random.Random(seed)
    out: list[DeviceConfig] = []
    for i in range(sensors):
        kind = SENSOR_TYPES[i % len(SENSOR_TYPES)]
        dev_id = f"{prefix}-{kind.replace('_', '')}-{i:05d}"
        out.append(DeviceConfig(
            id=dev_id, type=kind, name=f"模拟{kind} {i}", address=f"模拟地址 {i}",
            location=GeoPoint(lon=center[0] + rng.uniform(-spread_deg, spread_deg), lat=center[1] + rng.uniform(-spread_deg, spread_deg)),
            secret=_secret(seed, dev_id), heartbeat_s=60.0))
    for i in range(boxes):
        dev_id = f"{prefix}-stb-{i:05d}"
        out.append(DeviceConfig(
            id=dev_id, type="set_top_box", household=f"模拟小区 {i // 10 + 1}幢{i % 10 + 1}01", address=f"模拟地址 stb {i}",
            location=GeoPoint(lon=center[0] + rng.uniform(-spread_deg, spread_deg), lat=center[1] + rng.uniform(-spread_deg, spread_deg)),
            secret=_secret(seed, dev_id), heartbeat_s=300.0))
    return out


def devices_from_deployment(path: str | Path) -> list[DeviceConfig]:
    """The ``devices`` of a deployment file, validated with the same schema GridWatch uses."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return [DeviceConfig.model_validate(d) for d in data.get("devices", [])]


def telemetry_payload(device: DeviceConfig, seq: int, crossing: bool, at: float | None = None, battery: float = 90.0) -> bytes:
    metrics = {name: (high if crossing else normal) for name, normal, high in _METRICS.get(device.type, _METRICS["generic"])}
    return json.dumps({"device": device.id, "ts": round(time.time() if at is None else at, 3), "seq": seq,
                       "battery": battery, "metrics": metrics}, separators=(",", ":")).encode()


def _client(url: str, client_id: str, username: str | None = None, password: str | None = None,
            clean: bool = True, will: tuple[str, bytes] | None = None) -> mqtt.Client:
    conn = parse_mqtt_url(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean)
    c.max_inflight_messages_set(1000)  # well under the 65 535 message ids QoS 1 has
    c.max_queued_messages_set(0)
    c.reconnect_delay_set(0.1, 2)
    user, pw = username or conn["username"], password or conn["password"]
    if user:
        c.username_pw_set(user, pw)
    if conn["tls"]:
        c.tls_set()
    if will is not None:
        c.will_set(will[0], will[1], qos=1, retain=True)
    c._gw_conn = conn  # type: ignore[attr-defined]
    return c


def _connect(c: mqtt.Client, timeout_s: float = 10.0) -> None:
    ready = threading.Event()
    refused: list[Any] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            refused.append(rc)
        ready.set()

    c.on_connect = on_connect
    conn = c._gw_conn  # type: ignore[attr-defined]
    c.connect_async(conn["host"], conn["port"], 30)
    c.loop_start()
    if not ready.wait(timeout_s) or refused:
        c.loop_stop()
        raise ConnectionError(f"MQTT connect to {conn['host']}:{conn['port']} failed: {refused or 'timeout'}")


@dataclass
class SensorReport:
    sent: int = 0
    acked: int = 0
    crossed: int = 0
    seconds: float = 0.0


def run_sensors(url: str, devices: Sequence[DeviceConfig], rate_hz: float, duration_s: float, *,
                topic_prefix: str = "gridwatch/v1", cross_after_s: float | None = None, connections: int = 4,
                qos: int = 1, per_device_auth: bool = False, max_messages: int | None = None) -> SensorReport:
    """Send telemetry from every sensor at ``rate_hz`` each for ``duration_s`` (paced in wall time).

    From ``cross_after_s`` on, every sensor reports values past its threshold (the demo's alarms).
    ``per_device_auth`` logs each device in with its own account (for brokers using the generated ACL).
    """
    sensors = [d for d in devices if d.type != "set_top_box"]
    report = SensorReport()
    if not sensors:
        return report
    clients: list[mqtt.Client] = []
    if per_device_auth:
        for d in sensors:
            clients.append(_client(url, f"sim-{d.id}-{uuid.uuid4().hex[:6]}", d.id, mqtt_password(d.secret or "")))
    else:
        clients = [_client(url, f"sim-sensors-{uuid.uuid4().hex[:8]}-{i}") for i in range(max(1, min(connections, len(sensors))))]
    lock = threading.Lock()
    acked = [0]

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with lock:
            acked[0] += 1

    for c in clients:
        c.on_publish = on_publish
        _connect(c)
    total_rate = rate_hz * len(sensors)
    total = int(total_rate * duration_s) if max_messages is None else max_messages
    start = time.time()
    seq = [0] * len(sensors)
    try:
        for n in range(total):
            due = start + n / total_rate if total_rate > 0 else start
            delay = due - time.time()
            if delay > 0.002:
                time.sleep(delay)  # pacing the send rate, not synchronisation
            i = n % len(sensors)
            dev = sensors[i]
            crossing = cross_after_s is not None and time.time() - start >= cross_after_s
            client = clients[i] if per_device_auth else clients[n % len(clients)]
            seq[i] += 1
            client.publish(device_topic(topic_prefix, dev.id, "telemetry"), telemetry_payload(dev, seq[i], crossing), qos=qos)
            report.sent += 1
            report.crossed += crossing
        deadline = time.time() + 10
        while time.time() < deadline and acked[0] < report.sent and qos > 0:
            time.sleep(0.02)  # waiting for the broker's PUBACKs, bounded
    finally:
        report.acked = acked[0] if qos > 0 else report.sent
        report.seconds = time.time() - start
        for c in clients:
            c.disconnect()
            c.loop_stop()
    return report


@dataclass
class PressRecord:
    device_id: str
    press_id: str
    sent_at: float
    kind: str = "press"
    reason: str | None = None
    attempts: int = 1
    acked_at: float | None = None  # when the answer with the case came
    case: str | None = None
    status: str | None = None
    first_at: float | None = None  # the first answer of any kind: ``queued`` (no case yet) or the case itself


@dataclass
class PressReport:
    sent: int = 0
    acked: int = 0
    latencies_s: list[float] = field(default_factory=list)  # press → case number
    first_latencies_s: list[float] = field(default_factory=list)  # press → first answer (``queued`` or the case)
    statuses: dict[str, int] = field(default_factory=dict)
    cases: dict[str, str | None] = field(default_factory=dict)

    def percentile(self, q: float) -> float | None:
        if not self.latencies_s:
            return None
        return float(np.percentile(self.latencies_s, 100 * q, method="inverted_cdf"))

    def first_percentile(self, q: float) -> float | None:
        """Press → first answer: what the box shows as "received" at once (the case number may follow)."""
        if not self.first_latencies_s:
            return None
        return float(np.percentile(self.first_latencies_s, 100 * q, method="inverted_cdf"))


class BoxFleet:
    """Set-top boxes on a few shared MQTT connections: press, cancel, and wait for the acks.

    With ``per_device_auth`` each box has its own connection and broker account (ACL tests);
    otherwise boxes share ``connections`` anonymous connections, like a lab rig of many boxes.
    """

    def __init__(self, url: str, boxes: Sequence[DeviceConfig], *, topic_prefix: str = "gridwatch/v1",
                 connections: int = 4, per_device_auth: bool = False, ack_timeout_s: float = 2.0,
                 http_url: str | None = None) -> None:
        self.url = url
        self.boxes = {b.id: b for b in boxes}
        self.prefix = topic_prefix
        self.ack_timeout_s = ack_timeout_s
        self.http_url = http_url
        self.records: dict[str, PressRecord] = {}
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)
        self._clients: dict[str, mqtt.Client] = {}
        ids = list(self.boxes)
        if per_device_auth:
            for b in boxes:
                self._clients[b.id] = _client(url, f"sim-{b.id}-{uuid.uuid4().hex[:6]}", b.id, mqtt_password(b.secret or ""))
        else:
            shared = [_client(url, f"sim-boxes-{uuid.uuid4().hex[:8]}-{i}") for i in range(max(1, min(connections, len(ids))))]
            for n, box_id in enumerate(ids):
                self._clients[box_id] = shared[n % len(shared)]

    def start(self) -> None:
        by_client: dict[int, tuple[mqtt.Client, list[str]]] = {}
        for box_id, c in self._clients.items():
            by_client.setdefault(id(c), (c, []))[1].append(box_id)
        for c, box_ids in by_client.values():
            c.on_message = self._on_message
            _connect(c)
            subscribed = threading.Event()
            c.on_subscribe = lambda *a, ev=subscribed: ev.set()
            topics = [(device_topic(self.prefix, b, ch), 1) for b in box_ids for ch in ("ack", "notify")]
            for i in range(0, len(topics), 100):
                subscribed.clear()
                c.subscribe(topics[i:i + 100])
                if not subscribed.wait(10):
                    raise ConnectionError("MQTT subscription to the ack topics timed out")

    def stop(self) -> None:
        for c in {id(c): c for c in self._clients.values()}.values():
            c.disconnect()
            c.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        device_id, channel = msg.topic.rsplit("/", 2)[-2:]
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        with self._lock:
            if channel == "notify":
                self.notifications.append((device_id, doc))
                return
            rec = self.records.get(f"{device_id}/{doc.get('press_id')}/{doc.get('kind', 'press')}")
            if rec is None or rec.acked_at is not None:
                return
            if rec.first_at is None and doc.get("status") in ("queued", "received", "duplicate", "cancelled"):
                rec.first_at = now
            if doc.get("status") in ("received", "duplicate", "cancelled"):
                rec.acked_at, rec.case, rec.status = now, doc.get("case"), doc.get("status")
                self._acked.notify_all()
            elif doc.get("status") == "error":
                rec.status = "error"

    def _send(self, box: DeviceConfig, body: bytes) -> dict[str, Any] | None:
        if self.http_url:
            import httpx

            headers = {"Content-Type": "application/json", **signed_headers(box.id, box.secret or "", body)}
            response = httpx.post(self.http_url, content=body, headers=headers, timeout=self.ack_timeout_s)
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            return answer if isinstance(answer, dict) and "status" in answer else {"status": f"http_{response.status_code}"}
        envelope = signed_envelope(box.id, box.secret or "", body)
        self._clients[box.id].publish(device_topic(self.prefix, box.id, "events"), envelope, qos=1)
        return None

    def press(self, box_id: str, press_id: str | None = None, kind: str = "press", reason: str | None = None) -> PressRecord:
        """Send a signed press (or cancel of ``press_id``); returns the record the ack will complete."""
        box = self.boxes[box_id]
        press_id = press_id or uuid.uuid4().hex[:16]
        body = json.dumps({"device": box_id, "press_id": press_id, "kind": kind, "reason": reason,
                           "at": time.time()}, ensure_ascii=False, separators=(",", ":")).encode()
        key = f"{box_id}/{press_id}/{kind}"
        rec = PressRecord(box_id, press_id, time.time(), kind, reason)
        with self._lock:
            self.records[key] = rec
        answer = self._send(box, body)
        if answer is not None:
            with self._lock:
                rec.status, rec.case = answer.get("status"), answer.get("case")
                if rec.status in ("received", "duplicate", "cancelled"):
                    rec.acked_at = time.time()
                    rec.first_at = rec.first_at or rec.acked_at
        return rec

    def wait(self, deadline_s: float = 10.0, retries: int = 2) -> PressReport:
        """Wait for every press's ack; re-send (re-signed, same press_id) those without one after the timeout."""
        end = time.time() + deadline_s
        with self._lock:
            while True:
                missing = [r for r in self.records.values() if r.acked_at is None]
                now = time.time()
                if not missing or now >= end:
                    break
                for rec in missing:
                    if now - rec.sent_at > self.ack_timeout_s * rec.attempts and rec.attempts <= retries:
                        rec.attempts += 1
                        box = self.boxes[rec.device_id]
                        body = json.dumps({"device": box.id, "press_id": rec.press_id, "kind": rec.kind,
                                           "reason": rec.reason, "at": rec.sent_at},
                                          ensure_ascii=False, separators=(",", ":")).encode()
                        self._lock.release()
                        try:
                            answer = self._send(box, body)
                        finally:
                            self._lock.acquire()
                        if answer is not None:
                            rec.status, rec.case = answer.get("status"), answer.get("case")
                            if rec.status in ("received", "duplicate", "cancelled"):
                                rec.acked_at = time.time()
                                rec.first_at = rec.first_at or rec.acked_at
                                self._acked.notify_all()
                self._acked.wait(timeout=0.05)
            report = PressReport(sent=len(self.records))
            for rec in self.records.values():
                report.statuses[rec.status or "no_ack"] = report.statuses.get(rec.status or "no_ack", 0) + 1
                report.cases[f"{rec.device_id}/{rec.press_id}/{rec.kind}"] = rec.case
                if rec.acked_at is not None:
                    report.acked += 1
                    report.latencies_s.append(rec.acked_at - rec.sent_at)
                if rec.first_at is not None:
                    report.first_latencies_s.append(rec.first_at - rec.sent_at)
        return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gridwatch simulate", description="Simulate sensors and set-top boxes against an MQTT broker.")
    p.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL")
    p.add_argument("--config", help="deployment file whose devices to play (default: generated devices)")
    p.add_argument("--sensors", type=int, default=12, help="generated sensors (without --config)")
    p.add_argument("--boxes", type=int, default=4, help="generated set-top boxes (without --config)")
    p.add_argument("--seed", default="gridwatch-sim", help="secret seed of generated devices")
    p.add_argument("--topic-prefix", default="gridwatch/v1")
    p.add_argument("--rate", type=float, default=1.0, help="telemetry messages per second per sensor")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of telemetry")
    p.add_argument("--cross-thresholds", action="store_true", help="sensors cross their thresholds halfway through")
    p.add_argument("--presses", type=int, default=0, help="alarm presses, spread over the boxes")
    p.add_argument("--http", help="send presses to this gateway URL instead of MQTT")
    p.add_argument("--connections", type=int, default=4, help="shared MQTT connections (without --per-device-auth)")
    p.add_argument("--per-device-auth", action="store_true", help="one connection per device with its derived broker password")
    p.add_argument("--ack-timeout", type=float, default=2.0)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)

    try:
        devices = devices_from_deployment(args.config) if args.config else simulated_devices(args.sensors, args.boxes, args.seed)
    except Exception as exc:
        print(f"cannot read devices: {exc}", file=sys.stderr)
        return 2
    sensors = [d for d in devices if d.type != "set_top_box"]
    boxes = [d for d in devices if d.type == "set_top_box" and d.secret]
    result: dict[str, Any] = {"sensors": len(sensors), "boxes": len(boxes)}
    try:
        fleet = None
        if args.presses and boxes:
            fleet = BoxFleet(args.mqtt, boxes, topic_prefix=args.topic_prefix, connections=args.connections,
                             per_device_auth=args.per_device_auth, ack_timeout_s=args.ack_timeout, http_url=args.http)
            fleet.start()
        sensor_thread_report: list[SensorReport] = []
        t = None
        if sensors and args.duration > 0 and args.rate > 0:
            t = threading.Thread(target=lambda: sensor_thread_report.append(run_sensors(
                args.mqtt, sensors, args.rate, args.duration, topic_prefix=args.topic_prefix,
                cross_after_s=args.duration / 2 if args.cross_thresholds else None,
                connections=args.connections, per_device_auth=args.per_device_auth)))
            t.start()
        if fleet is not None:
            for n in range(args.presses):
                fleet.press(boxes[n % len(boxes)].id)
            pr = fleet.wait(deadline_s=max(10.0, args.ack_timeout * 4))
            fleet.stop()
            result.update(presses_sent=pr.sent, presses_acked=pr.acked, ack_p50_ms=(pr.percentile(0.5) or 0) * 1000,
                          ack_p99_ms=(pr.percentile(0.99) or 0) * 1000, ack_statuses=pr.statuses)
        if t is not None:
            t.join()
            sr = sensor_thread_report[0] if sensor_thread_report else SensorReport()
            result.update(telemetry_sent=sr.sent, telemetry_acked=sr.acked, telemetry_crossing=sr.crossed,
                          telemetry_rate=round(sr.sent / sr.seconds, 1) if sr.seconds else 0.0)
    except (ConnectionError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value if not isinstance(value, float) or math.isnan(value) else round(value, 2)}")
    return 0 if result.get("presses_acked", 0) == result.get("presses_sent", 0) else 3


if __name__ == "__main__":
    raise SystemExit(main())
