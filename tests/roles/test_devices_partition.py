"""Two devices processes split MQTT ingest by device (``--devices-partition i/2``) and lose nothing
across a broker restart — where a ``$share`` subscription would (Mosquitto 2.0 forgets it; F-MQTT-1).

Two runtimes with only the devices role, as the supervisor's ``--devices-processes 2`` children run
them, on a Mosquitto of the test's own with persistence; readings from three devices at QoS 1.
"""
from __future__ import annotations

import signal
import threading

import pytest

from ingest.devices.topics import partition_of
from tests.fault.support import DEVICES, Device, OwnMosquitto, drop_prefix, runtime_deployment, settle
from tests.support import wait_for

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def seen(monkeypatch):
    """(engine, device, seq) of every reading a sensor-rule engine is handed."""
    from detectors.sensor_rules import SensorRuleEngine

    got: list[tuple[int, str, int]] = []
    original = SensorRuleEngine.on_reading

    def counting(self, reading):  # noqa: ANN001, ANN202
        if reading.metric == "seq":
            got.append((id(self), reading.device_id, int(reading.value)))
        return original(self, reading)

    monkeypatch.setattr(SensorRuleEngine, "on_reading", counting)
    return got


def test_two_partitions_split_devices_and_survive_a_broker_restart(tmp_path, seen):
    from gateway.runtime import build_runtime
    from ingest.devices.role import Partition

    assert {partition_of(d, 2) for d in DEVICES} == {0, 1}, "the test's devices must fall in both partitions"
    broker = OwnMosquitto(tmp_path)
    broker.start()
    dep = runtime_deployment(tmp_path, mqtt_url=broker.url)
    parts = [build_runtime(dep, roles=["devices"], devices_partition=Partition(i, 2)) for i in range(2)]
    device: Device | None = None
    stop = threading.Event()
    total = 900
    try:
        for rt in parts:
            rt.start()
        assert parts[0].mqtt.client_id != parts[1].mqtt.client_id
        device = Device(broker.port, dep.ingest.mqtt.topic_prefix)
        feeder = device.feed(total, 250.0, stop)
        wait_for(lambda: len(seen) >= 200, 30, what="readings flowing before the restart")
        broker.stop(signal.SIGTERM)
        wait_for(lambda: not any(rt.mqtt.connected for rt in parts), 10, what="both partitions noticed the broker is gone")
        at_stop = device.published
        wait_for(lambda: device.published >= at_stop + 150, 20, what="devices publishing during the outage")
        broker.start()
        wait_for(lambda: all(rt.mqtt.subscribed for rt in parts), 30, what="both partitions resubscribed")
        feeder.join(60)
        assert not feeder.is_alive()
        wait_for(lambda: len(device.acked) == total, 30, what="the broker acknowledged every reading")
        settle([s for _, _, s in seen], set(range(total)), 40)

        received = {s for _, _, s in seen}
        lost = sorted(device.acked - received)
        assert not lost, f"{len(lost)} acknowledged readings lost, e.g. {lost[:5]}"
        # Disjoint: each device's readings reached exactly the partition that owns it, never the other.
        engine_of = {id(rt.sensor_rules): i for i, rt in enumerate(parts)}
        owners: dict[str, set[int]] = {}
        for engine, dev, _ in seen:
            owners.setdefault(dev, set()).add(engine_of[engine])
        assert owners == {d: {partition_of(d, 2)} for d in DEVICES}, owners
    finally:
        stop.set()
        if device is not None:
            device.close()
        for rt in parts:
            rt.stop()
        broker.stop()
        drop_prefix(dep.services.redis_url, dep.services.stream_prefix)


def test_partition_flag_is_checked():
    from ingest.devices.role import Partition

    assert Partition.parse("1/3") == Partition(1, 3)
    for bad in ("3/3", "1", "a/b", "0/0", "-1/2"):
        with pytest.raises(ValueError, match="devices-partition"):
            Partition.parse(bad)
