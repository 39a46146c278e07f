"""The video role as a pool member (``detection.pool.enabled``), in this process against the real Redis: it
analyses the cameras whose leases it holds, follows cameras added and removed through the API, stamps their
anomalies with the lease's fence, and gives its leases back when it stops. Sources are off (no decoding here;
tests/multihost runs the real thing across hosts)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.streams import StreamKeys
from detectors.camera_state import CameraControl, CameraKeys
from detectors.pool_keys import PoolKeys
from detectors.pool_store import lease_owners
from tests.alerts.helpers import anomaly
from tests.support import wait_for

pytestmark = pytest.mark.timeout(60)


def _role(redis_client, stream_prefix: str, tmp_path: Path, worker_id: str, config_store):
    from alerts.publishing import OutboxFactory
    from detectors.video_role import VideoRole
    from gateway.config import Camera, load_deployment

    dep = load_deployment()
    dep.detection.model.path = dep.detection.fall_model.path = dep.detection.fire_model.path = None  # no model loads
    dep.detection.pool.enabled = True
    dep.detection.pool.tick_s = 0.2
    dep.services.stream_prefix = stream_prefix
    outbox = OutboxFactory("redis://127.0.0.1:6379/0", stream_prefix)()
    return VideoRole(dep, redis_client, CameraKeys(stream_prefix), publish=outbox.publish, evidence_dir=tmp_path,
                     load_camera=Camera.model_validate, workers=0, sources=False, worker_id=worker_id,
                     config_store=config_store), dep


def _analysing(role) -> set[str]:
    """The cameras the role's engine analyses (sources off: the pipeline's configured cameras)."""
    return set(role.engine.pipeline._cameras)  # noqa: SLF001 - what the engine was given, no decoder to ask


def test_pooled_video_role_holds_leases_follows_changes_and_fences(redis_client, stream_prefix, tmp_path):
    from alerts.config_store import SqlConfigStore
    from alerts.store import open_store

    config_store = SqlConfigStore(open_store(f"sqlite:///{tmp_path / 'gw.db'}"))
    role, dep = _role(redis_client, stream_prefix, tmp_path, "role-a", config_store)
    pool = PoolKeys(stream_prefix)
    ids = [c.id for c in dep.cameras]
    role.start()
    try:
        wait_for(lambda: _analysing(role) == set(ids), 15, what="the lone member to take every camera")
        owners = lease_owners(redis_client, pool, ids)
        assert {o.member for o in owners.values()} == {"role-a"}

        # an anomaly of a held camera leaves stamped with that camera's lease
        role.publish(anomaly(source_id="cam-plaza"))
        entry = redis_client.xrange(StreamKeys(stream_prefix).anomalies)[-1][1]
        fence = json.loads(entry[b"anomaly"])["fence"]
        assert fence == {"camera": "cam-plaza", "owner": "role-a", "token": owners["cam-plaza"].fence}

        # a camera added through the API is taken; a removed one is dropped and its lease given back
        control = CameraControl(redis_client, CameraKeys(stream_prefix), config_store)
        doc = dep.cameras[0].model_dump(mode="json") | {"id": "cam-new", "name": "新加"}
        control.put(doc, new=True)
        wait_for(lambda: "cam-new" in _analysing(role), 10, what="the added camera to be analysed")
        control.remove("cam-plaza")
        wait_for(lambda: "cam-plaza" not in _analysing(role)
                 and "cam-plaza" not in lease_owners(redis_client, pool, ["cam-plaza"]), 10,
                 what="the removed camera to stop and its lease to go")
    finally:
        role.stop()
    assert lease_owners(redis_client, pool, ids + ["cam-new"]) == {}   # stopping gave every lease back
