"""Multi-host evidence: the video side stores a ticket's snapshot in S3 (a real S3-compatible server), an API
process on another "host" (its own run folder, nothing on its disk) serves it; traversal is still refused."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from gw_support import (FOOTAGE, REDIS_URL, build_test_runtime, camera_anomaly, drop_keys, make_deployment,  # noqa: E402
                        start_role_process)

from ingest.anomaly import Evidence  # noqa: E402
from ingest.blobs import EvidenceStoreConfig, S3Config  # noqa: E402
from tests.support import free_port, wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(300)


def _frame() -> np.ndarray:
    cap = cv2.VideoCapture(str(FOOTAGE / "plaza_pedestrians_720p.avi"))
    ok, image = cap.read()
    cap.release()
    assert ok, "the shared plaza footage is needed"
    return image


def _login(base: str, user: str, password: str) -> dict:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": user, "password": password}, timeout=5)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _api_up(base: str) -> bool:
    try:
        return httpx.post(f"{base}/api/v1/auth/token", data={"username": "operator", "password": "operator123"},
                          timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_snapshot_stored_by_the_video_side_is_served_by_another_api_process(tmp_path, s3_server):
    from detectors.config import EvidenceConfig
    from detectors.evidence import ClipWriter, EvidenceRecorder

    bucket = s3_server.bucket()
    video_dep = make_deployment(tmp_path / "video-host")
    video_dep.services.sql_url = f"sqlite:///{tmp_path}/shared.db"  # the hosts share the SQL store …
    video_dep.services.evidence_store = EvidenceStoreConfig(kind="s3", s3=S3Config(  # … and the bucket
        bucket=bucket, prefix="site-1/", endpoint_url=s3_server.endpoint))
    api_dep = copy.deepcopy(video_dep)
    api_dep.services.run_dir = str(tmp_path / "api-host")
    api_dep.gateway.port = free_port()
    base = f"http://127.0.0.1:{api_dep.gateway.port}"
    rt = build_test_runtime(video_dep, roles=("intake",))
    api = None
    try:
        # the video side: the evidence recorder of a camera, storing through the deployment's store
        writer = ClipWriter()
        rec = EvidenceRecorder("cam-plaza", rt.evidence_store, EvidenceConfig(pre_s=0, post_s=0), writer)
        evidence = rec.capture("a-s3", _frame(), 1_767_000_000.0, [((100, 100, 300, 400), "person")])
        writer.close(5)
        assert [e.kind for e in evidence] == ["snapshot", "frame"]
        outside = Evidence(kind="snapshot", path="../../shared.db")
        ref = rt.intake.file(camera_anomaly(rt, evidence=[*evidence, outside]))
        api = start_role_process(api_dep, "api")
        wait_for(lambda: _api_up(base), 180, what="the API process")  # 30-40 s on a loaded 2-core box
        op = _login(base, "operator", "operator123")
        r = httpx.get(f"{base}/api/v1/tickets/{ref.ticket_id}/evidence/0", headers=op, timeout=10)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.content == rt.evidence_store.get(evidence[0].path)
        image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[:2] == (720, 1280)
        assert not list(Path(api_dep.run_dir).rglob("*.jpg")), "the API host must not have needed a local copy"
        assert httpx.get(f"{base}/api/v1/tickets/{ref.ticket_id}/evidence/1", headers=op, timeout=10).status_code == 200
        assert httpx.get(f"{base}/api/v1/tickets/{ref.ticket_id}/evidence/2", headers=op, timeout=10).status_code == 404
        # another grid's worker: the same refusal as for the ticket itself
        assert httpx.get(f"{base}/api/v1/tickets/{ref.ticket_id}/evidence/0", timeout=10,
                         headers=_login(base, "worker_my4", "worker123")).status_code == 403
        # the bucket's server goes away: 503 with a reason, the API process stays up
        s3_server.stop()
        down = httpx.get(f"{base}/api/v1/tickets/{ref.ticket_id}/evidence/0", headers=op, timeout=15)
        assert down.status_code == 503 and "evidence store" in down.json()["detail"]
        assert httpx.get(f"{base}/api/v1/tickets/{ref.ticket_id}", headers=op, timeout=10).status_code == 200
    finally:
        if api is not None:
            api.terminate()
            api.join(15)
        rt.stop()
        drop_keys(redis.Redis.from_url(REDIS_URL), video_dep.services.stream_prefix)
