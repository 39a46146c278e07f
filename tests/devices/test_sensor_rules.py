"""Each sensor rule type through the built-in profiles, heartbeat loss, low battery, and the alarm anomaly.

The engine publishes into the real Redis intake stream with ``alerts.streams.publish_anomaly``, as
the runtime wires it, and the assertions read the stream back."""
from __future__ import annotations

import pytest

from alerts.streams import StreamKeys, publish_anomaly
from ingest.anomaly import Anomaly, Evidence
from detectors.sensor_profiles import CountInWindow, RateOfChange, register_profile
from detectors.sensor_rules import SensorRuleEngine, alarm_anomaly
from ingest.devices import AlarmPress, Reading

from .conftest import device

pytestmark = pytest.mark.timeout(30)

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class Sink:
    def __init__(self, client, prefix):
        self.client, self.keys = client, StreamKeys(prefix)

    def __call__(self, anomaly: Anomaly) -> None:
        publish_anomaly(self.client, self.keys, anomaly)

    def all(self) -> list[Anomaly]:
        return [Anomaly.from_stream(f) for _, f in self.client.xrange(self.keys.anomalies)]

    def seen(self) -> list[tuple[str, str, str]]:
        return [(a.source_id, a.kind, a.state) for a in self.all()]


@pytest.fixture
def sink(redis_client, stream_prefix):
    return Sink(redis_client, stream_prefix)


@pytest.fixture
def engine(registry, sink):
    return SensorRuleEngine(registry, sink, clock=lambda: T0)


def feed(engine, dev, metric, values, start=T0, step=1.0, lag=0.2):
    for i, v in enumerate(values):
        at = start + i * step
        engine.on_reading(Reading(dev, metric, float(v), at, at + lag))


def test_threshold_with_hysteresis_smoke(engine, sink):
    feed(engine, "smoke-1", "smoke", [0.5, 9.0, 12.0, 6.0, 5.0, 3.9, 3.0, 9.5])
    assert sink.seen() == [("smoke-1", "smoke_alarm", "firing"), ("smoke-1", "smoke_alarm", "cleared"),
                           ("smoke-1", "smoke_alarm", "firing")]
    first = sink.all()[0]
    assert first.source == "sensor" and first.location == engine._registry.get("smoke-1").location
    assert first.details["value"] == 9.0 and first.details["threshold"] == 8.0
    assert first.occurred_at.timestamp() == T0 + 1 and first.observed_at == T0 + 1.2


def test_manhole_tilt_threshold(engine, sink):
    feed(engine, "manhole-1", "tilt_deg", [1, 2, 16, 20, 4])
    assert sink.seen() == [("manhole-1", "manhole_tilt", "firing"), ("manhole-1", "manhole_tilt", "cleared")]


def test_duration_water_level_by_readings_and_by_tick(engine, sink, registry):
    feed(engine, "water-1", "level_cm", [25, 31, 35, 33], step=20)  # above since +20, last at +60: 40 s
    assert sink.seen() == []
    feed(engine, "water-1", "level_cm", [34], start=T0 + 80)  # 60 s above
    assert sink.seen() == [("water-1", "water_level", "firing")]
    feed(engine, "water-1", "level_cm", [20], start=T0 + 90)
    assert sink.seen()[-1] == ("water-1", "water_level", "cleared")
    # a door held open: no further reading comes, tick notices the time ran out (device clock via offset)
    feed(engine, "door-1", "open", [1], start=T0 + 100)
    engine.tick(T0 + 100 + 60)
    assert ("door-1", "door_open", "firing") not in sink.seen()
    engine.tick(T0 + 100 + 121)
    assert ("door-1", "door_open", "firing") in sink.seen()


def test_rate_of_change_gas(engine, sink):
    feed(engine, "gas-1", "gas_lel", [2, 3, 4, 15, 16], step=10)  # +13 %LEL within 60 s, still < 20
    assert sink.seen() == [("gas-1", "gas_leak", "firing")]
    assert sink.all()[0].details["rule"] == "gas_rising" and sink.all()[0].details["change"] >= 10
    feed(engine, "gas-1", "gas_lel", [16, 16, 16, 16, 16, 16, 16, 16], start=T0 + 50, step=10)
    assert sink.seen()[-1] == ("gas-1", "gas_leak", "cleared")


def test_count_in_window_fence(engine, sink):
    feed(engine, "fence-1", "vibration", [1, 0, 1], step=10)
    assert sink.seen() == []
    feed(engine, "fence-1", "vibration", [1], start=T0 + 25)  # 3 within 30 s
    assert sink.seen() == [("fence-1", "fence_breach", "firing")]
    engine.tick(T0 + 200)  # window empty → cleared
    assert sink.seen()[-1] == ("fence-1", "fence_breach", "cleared")
    feed(engine, "fence-1", "breach", [1, 0], start=T0 + 300)
    assert sink.seen()[-2:] == [("fence-1", "fence_breach", "firing"), ("fence-1", "fence_breach", "cleared")]


def test_low_battery(engine, sink):
    feed(engine, "smoke-1", "battery", [80, 25, 19, 22, 29, 31])
    assert sink.seen() == [("smoke-1", "low_battery", "firing"), ("smoke-1", "low_battery", "cleared")]


def test_heartbeat_loss_and_last_will(registry, sink):
    engine = SensorRuleEngine(registry, sink, clock=lambda: T0, status_grace_s=60)
    for d in registry.all():
        registry.touch(d.id, T0)
    engine.tick(T0 + 899)  # heartbeat 300 s × 3
    assert sink.seen() == []
    engine.tick(T0 + 901)
    offline = {s for s, k, st in sink.seen() if k == "device_offline" and st == "firing"}
    assert offline == {d.id for d in registry.all()}
    engine.tick(T0 + 1000)  # no repeats while still offline
    assert len(sink.seen()) == len(offline)
    feed(engine, "smoke-1", "smoke", [0.1], start=T0 + 1001)
    assert sink.seen()[-1] == ("smoke-1", "device_offline", "cleared")
    # a box's last will: offline after the grace period even though its heartbeat is not yet late
    registry.touch("stb-1", T0 + 2000)
    engine.on_status("stb-1", True, T0 + 2000)
    assert sink.seen()[-1] == ("stb-1", "device_offline", "cleared")
    engine.on_status("stb-1", False, T0 + 2001)
    engine.tick(T0 + 2030)
    assert sink.seen()[-1] != ("stb-1", "device_offline", "firing")
    engine.tick(T0 + 2062)
    assert sink.seen()[-1] == ("stb-1", "device_offline", "firing")
    assert sink.all()[-1].details["cause"] == "last_will"


def test_publish_failure_is_retried_on_the_next_reading(registry):
    published, fail = [], [True]

    def flaky(anomaly):
        if fail[0]:
            raise ConnectionError("redis down")
        published.append(anomaly)

    engine = SensorRuleEngine(registry, flaky)
    with pytest.raises(ConnectionError):
        feed(engine, "smoke-1", "smoke", [10])
    fail[0] = False
    feed(engine, "smoke-1", "smoke", [11], start=T0 + 1)
    assert [(a.kind, a.state) for a in published] == [("smoke_alarm", "firing")]


def test_same_transition_replayed_has_the_same_id(registry):
    ids = []
    for _ in range(2):
        e = SensorRuleEngine(registry, lambda a: ids.append(a.id))
        feed(e, "smoke-1", "smoke", [1, 10])
    assert len(ids) == 2 and ids[0] == ids[1]


def test_custom_profile(registry, sink):
    register_profile("test-silo", [RateOfChange("drop", "fill", "water_level", rise=-20, within_s=60),
                                   CountInWindow("knocks", "knock", "fence_breach", count=2, window_s=5)])
    registry.upsert(device("silo-1", "generic", profile="test-silo"))
    engine = SensorRuleEngine(registry, sink)
    feed(engine, "silo-1", "fill", [80, 70, 55])
    feed(engine, "silo-1", "knock", [1, 1], start=T0 + 10)
    assert sink.seen() == [("silo-1", "water_level", "firing"), ("silo-1", "fence_breach", "firing")]


def test_alarm_anomaly_at_the_household(registry):
    dev = registry.get("stb-1")
    press = AlarmPress("stb-1", "p-42", "press", None, T0, T0 + 0.1)
    a = alarm_anomaly(press, dev, [Evidence(kind="snapshot", path="snap/cam-plaza.jpg")])
    assert (a.kind, a.source, a.state, a.location) == ("one_key_alarm", "alarm", "firing", dev.location)
    assert a.details["household"] == "清河北社区 3幢1单元101" and a.evidence[0].path == "snap/cam-plaza.jpg"
    assert alarm_anomaly(press, dev, []).id == a.id  # the same press is one occurrence
    cancel = alarm_anomaly(AlarmPress("stb-1", "p-42", "cancel", "误按", T0 + 5, T0 + 5.1, "QS-1"), dev, [])
    assert cancel.state == "cleared" and cancel.details["reason"] == "误按" and cancel.details["cancelled"]
    assert cancel.id != a.id
