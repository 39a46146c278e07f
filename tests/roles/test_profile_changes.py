"""A device profile edited through the API reaches a devices role that runs apart from the API, at once, and a
devices role started afterwards (a restart) starts with the edit. Two runtimes as two role processes hold them
(API + the rest; devices alone) on the real Redis."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import REDIS_URL, build_test_runtime, drop_keys, make_deployment  # noqa: E402
from tests.support import wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(60)
ADMIN = ("admin", "admin123")


def _gas_above(rt) -> float:  # noqa: ANN001
    return rt.profiles.get("gas").rules[0].above


def test_a_profile_edited_through_the_api_reaches_a_devices_role_elsewhere_and_survives_its_restart(tmp_path):
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.runtime import ROLES

    dep = make_deployment(tmp_path)
    dep.cameras = []
    dep.detection.model.path = None
    api = build_test_runtime(dep, roles=[r for r in ROLES if r != "devices"])
    devices = build_test_runtime(dep.model_copy(deep=True), roles=["devices"])
    later = None
    try:
        api.start()
        devices.start()
        assert _gas_above(devices) == 20.0  # the shipped gas profile
        new = {"missed_heartbeats": 3, "rules": [
            {"type": "threshold", "name": "gas_high", "metric": "gas_lel", "kind": "gas_leak", "above": 12.0, "clear": 6.0}]}
        with TestClient(create_app(api)) as client:
            token = client.post("/api/v1/auth/token", data={"username": ADMIN[0], "password": ADMIN[1]}).json()["access_token"]
            r = client.put("/api/v1/device-profiles/gas", headers={"Authorization": f"Bearer {token}"}, json=new)
            assert r.status_code == 200, r.text
        wait_for(lambda: _gas_above(devices) == 12.0, 10, what="the devices role to apply the edited gas profile")
        later = build_test_runtime(dep.model_copy(deep=True), roles=["devices"])  # a devices role restarted
        assert _gas_above(later) == 12.0
    finally:
        for rt in (later, devices, api):
            if rt is not None:
                rt.stop()
        r = redis.Redis.from_url(REDIS_URL)
        drop_keys(r, dep.services.stream_prefix)
        r.close()
