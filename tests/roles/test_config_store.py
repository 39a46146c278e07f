"""Cameras, devices and device profiles changed through the API are rows of the SQL store: they reach a second API
node at once (over the Redis stream), and a whole restart after Redis lost every GridWatch key still has them —
a camera the deployment file seeds and the API removed stays removed. On SQLite and on PostgreSQL (a database of
the test's own), with the real Redis.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import INTEGRATOR_KEY, REDIS_URL, build_test_runtime, drop_keys, make_deployment  # noqa: E402
from tests.support import wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(120)
KEY = {"X-API-Key": INTEGRATOR_KEY}
CAMERA = {"id": "cam-api-added", "name": "新增广场", "source": {"url": "footage:plaza_pedestrians_720p.avi"},
          "pose": {"position": {"lon": 120.105, "lat": 30.276}, "bearing_deg": 90, "height_m": 6, "fov_deg": 70},
          "zones": [{"name": "入口", "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]}],
          "analysis": {"fps": 5}, "rules": [{"kind": "intrusion", "zone": "入口"}]}
DEVICE = {"id": "smoke-api-added", "type": "smoke", "address": "新装烟感", "location": {"lon": 120.1051, "lat": 30.2551},
          "secret": "api-smoke-secret"}
GAS = {"missed_heartbeats": 3, "rules": [
    {"type": "threshold", "name": "gas_high", "metric": "gas_lel", "kind": "gas_leak", "above": 12.0, "clear": 6.0}]}
SEEDED = "cam-crossing"  # in the deployment file; removed through the API


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gridwatch.db'}"
        return
    from tests.fault.support import PgDatabase

    db = PgDatabase()
    try:
        yield db.url
    finally:
        db.drop()


def _state(client: Any) -> dict[str, Any]:
    cams = {c["id"]: c for c in client.get("/api/v1/cameras", headers=KEY).json()["items"]}
    dev = client.get(f"/api/v1/devices/{DEVICE['id']}", headers=KEY)
    gas = client.get("/api/v1/device-profiles/gas", headers=KEY).json()
    return {"added": cams.get(CAMERA["id"]), "seeded": SEEDED in cams, "device": dev.status_code,
            "gas_above": gas["rules"][0]["above"]}


def _as_changed(state: dict[str, Any]) -> bool:
    added = state["added"]
    return (added is not None and added["zones"][0]["name"] == "入口" and added["rules"][0]["kind"] == "intrusion"
            and not state["seeded"] and state["device"] == 200 and state["gas_above"] == 12.0)


def test_api_changes_reach_another_node_and_outlive_a_restart_after_redis_lost_them(tmp_path, sql_url):
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.runtime import ROLES

    dep = make_deployment(tmp_path)
    dep.services.sql_url = sql_url
    dep.detection.model.path = None
    roles = [r for r in ROLES if r != "video"]
    node_a = build_test_runtime(dep.model_copy(deep=True), roles=roles)
    node_b = build_test_runtime(dep.model_copy(deep=True), roles=["api"])  # a second API node, same store and Redis
    restarted = None
    client = redis.Redis.from_url(REDIS_URL)
    try:
        node_a.start()
        node_b.start()
        with TestClient(create_app(node_a)) as a, TestClient(create_app(node_b)) as b:
            before = _state(b)
            assert before["seeded"] and before["added"] is None and before["device"] == 404 and before["gas_above"] == 20.0
            assert a.post("/api/v1/cameras", headers=KEY, json=CAMERA).status_code == 201
            assert a.delete(f"/api/v1/cameras/{SEEDED}", headers=KEY).status_code == 204
            assert a.post("/api/v1/devices", headers=KEY, json=DEVICE).status_code == 201
            assert a.put("/api/v1/device-profiles/gas", headers=KEY, json=GAS).status_code == 200
            assert _as_changed(_state(a))
            wait_for(lambda: _as_changed(_state(b)), 10, interval=0.1, what="the second API node to show every change")
            assert node_b.devices.get(DEVICE["id"]) is not None  # its registry too: HTTPS presses are verified there
        node_b.stop()
        node_a.stop()
        node_a = node_b = None

        drop_keys(client, dep.services.stream_prefix)  # Redis lost every key of this deployment (a flush, a new server)
        restarted = build_test_runtime(dep.model_copy(deep=True), roles=ROLES)  # the whole of gridwatch restarted
        restarted.start()
        with TestClient(create_app(restarted)) as c:
            assert _as_changed(_state(c))
        assert restarted.devices.get(DEVICE["id"]).secret.reveal() == DEVICE["secret"]  # presses still verify
        assert restarted.profiles.get("gas").rules[0].above == 12.0
    finally:
        for rt in (restarted, node_b, node_a):
            if rt is not None:
                rt.stop()
        drop_keys(client, dep.services.stream_prefix)
        client.close()
