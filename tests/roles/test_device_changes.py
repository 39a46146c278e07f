"""A device registered through the API reaches a devices role that runs apart from the API (its own
registry and MQTT session, partition 1 of 2): the role subscribes to the new device's topics and its
smoke alarm becomes a ticket. Removing the device through the API stops the role accepting it.

Two runtimes as two role processes would hold them (API + the rest; devices alone), real broker and Redis.
"""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import INTEGRATOR_KEY, REDIS_URL, build_test_runtime, drop_keys, make_deployment  # noqa: E402
from ingest.devices.topics import partition_of  # noqa: E402
from tests.roles.support import Box  # noqa: E402
from tests.support import wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(90)
KEY = {"X-API-Key": INTEGRATOR_KEY}


def _new_id() -> str:
    while True:  # an id in partition 1 of 2
        dev = f"smoke-n{uuid.uuid4().hex[:6]}"
        if partition_of(dev, 2) == 1:
            return dev


def _filed(rt, device_id: str) -> int:  # noqa: ANN001
    from alerts.models import Occurrence

    with rt.store.read() as s:
        return len(list(s.scalars(select(Occurrence.id).where(Occurrence.source_id == device_id))))


def test_a_device_added_through_the_api_is_ingested_by_its_partition(tmp_path):
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.runtime import ROLES
    from ingest.devices.role import Partition

    dep = make_deployment(tmp_path)
    dep.cameras = []
    dep.detection.model.path = None
    dep.ingest.mqtt.topic_prefix = f"gwtest/{dep.services.stream_prefix}/v1"
    api = build_test_runtime(dep, roles=[r for r in ROLES if r != "devices"])
    from gateway.runtime import build_runtime

    devices = build_runtime(dep.model_copy(deep=True), sources=True, roles=["devices"], devices_partition=Partition(1, 2))
    box = None
    try:
        api.start()
        devices.start()
        box = Box(dep.ingest.mqtt.topic_prefix)
        dev = _new_id()
        with TestClient(create_app(api)) as client:
            body = {"id": dev, "type": "smoke", "address": "新装烟感", "location": {"lon": 120.1051, "lat": 30.2551},
                    "secret": "new-smoke-secret"}
            assert client.post("/api/v1/devices", headers=KEY, json=body).status_code == 201
            wait_for(lambda: devices.devices.get(dev) is not None, 10, what="the devices role's registry to get the device")
            # Readings until one is taken (the subscription's SUBACK is not observable from here).
            wait_for(lambda: box.reading(dev, {"smoke": 15.0}) and _filed(api, dev) >= 1, 20, interval=0.5,
                     what="the new device's smoke alarm filed")
            assert client.delete(f"/api/v1/devices/{dev}", headers=KEY).status_code == 204
            wait_for(lambda: devices.devices.get(dev) is None, 10, what="the devices role dropping the device")
    finally:
        if box is not None:
            box.close()
        devices.stop()
        api.stop()
        r = redis.Redis.from_url(REDIS_URL)
        drop_keys(r, dep.services.stream_prefix)
        r.close()
