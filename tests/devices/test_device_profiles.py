"""Device profiles as data: thresholds in the deployment file (validated with file:line errors), shipped defaults
equal to the old Python constants, and changed through the API at run time — the running rule engine fires
on the new threshold without a restart."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import yaml

from detectors.device_profiles import DeviceProfile, ProfileBook, shipped_profiles
from detectors.sensor_profiles import SHIPPED
from detectors.sensor_rules import SensorRuleEngine
from gateway.config import ConfigError, load_deployment, parse_deployment
from ingest.devices import DeviceRegistry
from ingest.devices.messages import Reading

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from tests.gateway.conftest import app, auth_as, client, runtime  # noqa: E402,F401  (the gateway's real test runtime)

pytestmark = pytest.mark.timeout(60)
DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


def _write(tmp_path: Path, profiles: dict | None = None, device_profile: str | None = None) -> Path:
    doc = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    doc["grids"]["file"] = str((DEMO.parent / doc["grids"]["file"]).resolve())
    if profiles is not None:
        doc["device_profiles"] = profiles
    if device_profile is not None:
        smoke = next(d for d in doc["devices"] if d["id"] == "smoke-0001")
        smoke["profile"] = device_profile
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text)


def test_shipped_profiles_are_the_former_constants():
    shipped = shipped_profiles()
    assert set(shipped) == {"smoke", "gas", "water_level", "manhole_tilt", "door", "fence", "set_top_box", "generic"}
    assert {n: p.compiled() for n, p in shipped.items()} == SHIPPED                # a lossless restatement
    smoke = shipped["smoke"].model_dump(exclude_none=True)
    assert smoke["rules"][0] == {"type": "threshold", "name": "smoke", "metric": "smoke", "kind": "smoke_alarm",
                                 "above": 8.0, "clear": 4.0}
    assert all(p.missed_heartbeats == 3 for p in shipped.values())


def test_a_profile_in_the_deployment_file_replaces_the_shipped_one_and_keeps_the_others(tmp_path):
    path = _write(tmp_path, {
        "smoke": {"rules": [{"type": "threshold", "name": "smoke", "metric": "smoke", "kind": "smoke_alarm",
                             "above": 5, "clear": 2}], "missed_heartbeats": 2},
        "vendor_x_gas": {"rules": [{"type": "rate_of_change", "name": "fast", "metric": "ppm", "kind": "gas_leak",
                                    "rise": 50, "within_s": 30}]},
    }, device_profile="vendor_x_gas")
    dep = load_deployment(path)
    assert dep.device_profiles["smoke"].rules[0].above == 5 and dep.device_profiles["smoke"].missed_heartbeats == 2
    assert dep.device_profiles["gas"] == shipped_profiles()["gas"]                  # untouched shipped profile
    assert ProfileBook(dep.device_profiles).rules_for("vendor_x_gas", "gas")[0].rise == 50


@pytest.mark.parametrize("rule, field, words", [
    ({"type": "threshold", "name": "s", "metric": "smoke", "kind": "smoke_alarm"}, "device_profiles.smoke.rules[0]",
     "exactly one of above/below"),
    ({"type": "duration", "name": "d", "metric": "open", "kind": "door_open", "for_s": -1, "above": 0.5},
     "device_profiles.smoke.rules[0]", "for_s"),
    ({"type": "thermal", "name": "t", "metric": "temp", "kind": "fire"}, "device_profiles.smoke.rules[0]", "type"),
    ({"type": "threshold", "name": "s", "metric": "smoke", "kind": "smoke_alarm", "above": 8, "colour": "red"},
     "device_profiles.smoke.rules[0]", "colour"),
])
def test_a_bad_profile_is_a_file_line_error(tmp_path, rule, field, words):
    path = _write(tmp_path, {"smoke": {"rules": [rule]}})
    with pytest.raises(ConfigError) as err:
        parse_deployment(path.read_text(encoding="utf-8"), str(path), path.parent)
    text = "\n".join(str(p) for p in err.value.problems)
    assert f"{path}:" in text and field in text and words in text, text
    line = int(str(err.value.problems[0]).split(":")[1])
    assert line >= _line_of(path, "device_profiles:"), text


def test_a_device_naming_an_unknown_profile_is_a_file_line_error(tmp_path):
    path = _write(tmp_path, device_profile="no_such_profile")
    with pytest.raises(ConfigError) as err:
        parse_deployment(path.read_text(encoding="utf-8"), str(path), path.parent)
    [problem] = [str(p) for p in err.value.problems]
    assert "devices[2].profile" in problem and "unknown device profile 'no_such_profile'" in problem
    assert int(problem.split(":")[1]) == _line_of(path, "no_such_profile")


def _reading(device: str, metric: str, value: float) -> Reading:
    now = time.time()
    return Reading(device, metric, value, now, now)


def test_the_engine_uses_an_edited_profile_at_once_and_its_heartbeat_count():
    from ingest.config import DeviceConfig
    from ingest.geo import GeoPoint

    registry = DeviceRegistry([DeviceConfig(id="smoke-1", type="smoke", address="x", heartbeat_s=10,
                                            location=GeoPoint(lon=120.105, lat=30.276))])
    book = ProfileBook()
    fired: list[tuple[str, str]] = []
    clock = [time.time()]
    engine = SensorRuleEngine(registry, publish=lambda a: fired.append((a.kind, a.state)), profiles=book,
                              clock=lambda: clock[0])
    engine.on_reading(_reading("smoke-1", "smoke", 6.0))
    assert fired == []                                                   # shipped: fires at 8
    book.put("smoke", DeviceProfile.model_validate({"missed_heartbeats": 5, "rules": [
        {"type": "threshold", "name": "smoke", "metric": "smoke", "kind": "smoke_alarm", "above": 5, "clear": 2}]}))
    engine.on_reading(_reading("smoke-1", "smoke", 6.0))
    assert fired == [("smoke_alarm", "firing")]                         # the new threshold, no restart
    registry.touch("smoke-1", clock[0], None, online=True)
    clock[0] += 35                                                       # 3.5 heartbeats: offline under the shipped 3
    engine.tick(clock[0])
    assert ("device_offline", "firing") not in fired                    # … but the profile now says 5
    clock[0] += 20
    engine.tick(clock[0])
    assert ("device_offline", "firing") in fired


def test_profiles_through_the_api_apply_without_a_restart(client, runtime, auth_as):
    admin = auth_as("admin")
    listed = client.get("/api/v1/device-profiles", headers=admin)
    assert listed.status_code == 200 and listed.json()["items"]["gas"]["rules"][0]["above"] == 20.0
    bad = client.put("/api/v1/device-profiles/gas", headers=admin, json={"rules": [
        {"type": "threshold", "name": "g", "metric": "gas_lel", "kind": "gas_leak", "above": 1, "below": 2}]})
    assert bad.status_code == 422 and "exactly one of above/below" in bad.text
    new = {"missed_heartbeats": 3, "rules": [
        {"type": "threshold", "name": "gas_high", "metric": "gas_lel", "kind": "gas_leak", "above": 12.0, "clear": 6.0}]}
    ok = client.put("/api/v1/device-profiles/gas", headers=admin, json=new)
    assert ok.status_code == 200, ok.text
    assert client.get("/api/v1/device-profiles/gas", headers=admin).json()["rules"][0]["above"] == 12.0
    assert client.put("/api/v1/device-profiles/gas", headers=auth_as("operator"), json=new).status_code == 403
    assert client.get("/api/v1/device-profiles/none-such", headers=admin).status_code == 404
    # the running engine now files a gas leak at 15 %LEL (the shipped profile needed 20)
    from ingest.config import DeviceConfig
    from ingest.geo import GeoPoint

    runtime.devices.upsert(DeviceConfig(id="gas-9", type="gas", address="厨房", location=GeoPoint(lon=120.105, lat=30.276)))
    published: list[str] = []
    runtime.sensor_rules._publish = lambda a: published.append(a.kind)  # noqa: SLF001 - observe what it files
    runtime.sensor_rules.on_reading(_reading("gas-9", "gas_lel", 15.0))
    assert published == ["gas_leak"]
    assert "device_profile.put" in (runtime.deployment.run_dir / "audit.jsonl").read_text()
