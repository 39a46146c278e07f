"""The MQTT broker restarted in the middle of a QoS 1 telemetry load, through the real runtime's ``MqttIngest``.

The broker is the test's own Mosquitto (``OwnMosquitto``: free port, persistence in the temp dir,
``user root`` when run as root so the persistence file is really written). ``gateway.runtime`` is
built from the demo deployment pointed at it (no cameras); every reading that reaches the sensor
rules is counted. Devices are persistent-session QoS 1 publishers (as the set-top boxes and sensors
are): a message counts as *sent* once the broker acknowledged it (PUBACK), and paho keeps and resends
what was in flight or queued while the broker was away.

Two restarts: SIGTERM (the broker saves its sessions and queued messages) and SIGKILL (a power cut:
only the last autosave survives, every second). Each reports sent, received, lost, duplicated, the
outage and how long ingest took to resubscribe and to receive the last message.

Finding F-MQTT-1 (Mosquitto 2.0.11, measured here and in a bare paho experiment): a persistent
session's *plain* subscription survives a broker restart (SIGTERM and SIGKILL alike), but a *shared*
one (``$share/{group}/…``) does not, so what devices publish between the broker's return and ingest's
re-subscription is PUBACKed and dropped. That loss is a race (347 of 1 000 lost in one run; none in the
CI run of 2026-12-02, where ingest re-subscribed 0.25 s after the broker came back, before any device
resent), so it is a documented finding rather than a test: ``ingest.mqtt.shared_group`` defaults to
``null`` and the devices role partitions devices without ``$share`` (tests/roles/test_devices_partition.py).
In the suite: SIGKILL with the plain subscription (must lose nothing); ``GRIDWATCH_LONG=1`` adds SIGTERM.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.fault.support import (DEVICES, Device, OwnMosquitto, count_seq_readings, drop_prefix, report, runtime_deployment,
                                 settle, wait_for)

pytestmark = pytest.mark.timeout(150)

@pytest.fixture
def seen_readings(monkeypatch):
    """Every reading the runtime's sensor rules are handed (the runtime binds ``on_reading`` when it is built)."""
    return count_seq_readings(monkeypatch)


LONG = os.environ.get("GRIDWATCH_LONG") == "1"
CASES = ["sigkill"] + (["sigterm"] if LONG else [])


@pytest.mark.parametrize("how", CASES)
def test_broker_restart_under_qos1_load_through_the_runtime(how, tmp_path, seen_readings, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    from gateway.runtime import build_runtime

    broker = OwnMosquitto(tmp_path)
    broker.start()
    dep = runtime_deployment(tmp_path, mqtt_url=broker.url)
    assert dep.ingest.mqtt.shared_group is None, "the default subscription is plain (F-MQTT-1)"
    rt = build_runtime(dep)
    total, rate_hz = 1000, 250.0
    device: Device | None = None
    stop = threading.Event()
    try:
        rt.start()
        assert rt.mqtt is not None and rt.mqtt.subscribed
        device = Device(broker.port, dep.ingest.mqtt.topic_prefix)
        feeder = device.feed(total, rate_hz, stop)
        wait_for(lambda: len(seen_readings) >= 300, 30, "readings flowing before the restart")
        received_at_stop = len(set(seen_readings))
        in_flight = device.published - received_at_stop
        broker.stop(signal.SIGTERM) if how == "sigterm" else broker.kill()
        down_at = time.monotonic()
        wait_for(lambda: not rt.mqtt.connected, 10, "ingest noticed the broker is gone")
        wait_for(lambda: device.published >= received_at_stop + 200, 20, "devices publishing during the outage")
        broker.start()
        up_at = time.monotonic()
        wait_for(lambda: rt.mqtt.subscribed, 30, "ingest reconnected and resubscribed")
        resubscribed_s = time.monotonic() - up_at
        feeder.join(60)
        assert not feeder.is_alive()
        wait_for(lambda: len(device.acked) == total, 30, "the broker acknowledged every message")
        settle(seen_readings, set(range(total)), 40)
        last_s = time.monotonic() - up_at
        received = set(seen_readings)
        lost = sorted(device.acked - received)
        dupes = len(seen_readings) - len(received)
        stats = rt.mqtt.stats()
        report(f"mqtt broker {how} + restart under QoS 1 load (runtime MqttIngest, "
               "plain subscription)", sent=total,
               broker_acked=len(device.acked), received=len(received), lost=len(lost), redelivered_dupes=dupes,
               in_flight_at_stop=in_flight, outage_s=round(up_at - down_at, 2),
               resubscribed_after_s=round(resubscribed_s, 2), all_received_after_s=round(last_s, 2),
               rejected=stats["rejected"])
        assert not lost, f"{len(lost)} acknowledged readings lost, e.g. {lost[:5]} … {lost[-5:]}"
        assert stats["rejected"] == 0, stats["rejects"]
    finally:
        stop.set()
        if device is not None:
            device.close()
        rt.stop()
        broker.stop()
        drop_prefix(dep.services.redis_url, dep.services.stream_prefix)
