"""The API and the video role in different processes: cameras added, changed and removed through the API
reach the video process over Redis, and status and snapshots come back the same way (the browser test covers the live views).

The API runs in the test's process (every role but video); the video role runs in a spawned process of
its own (as the supervisor runs it), decoding a real clip, motion-only (no model: fast to start).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import FOOTAGE, INTEGRATOR_KEY, REDIS_URL, build_test_runtime, drop_keys, make_deployment, start_role_process  # noqa: E402
from tests.support import wait_for  # noqa: E402

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not (FOOTAGE / "plaza_pedestrians_720p.avi").exists(), reason="shared footage is absent")]
KEY = {"X-API-Key": INTEGRATOR_KEY}
CAMERA = {"id": "cam-added", "name": "新增广场", "source": {"url": "footage:plaza_pedestrians_720p.avi"},
          "pose": {"position": {"lon": 120.105, "lat": 30.276}, "bearing_deg": 90, "height_m": 6, "fov_deg": 70},
          "analysis": {"fps": 5}, "rules": [{"kind": "motion"}]}


@pytest.fixture
def split(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.runtime import ROLES

    dep = make_deployment(tmp_path)
    dep.cameras = []
    dep.detection.model.path = None
    procs = [start_role_process(dep, "video")]
    rt = build_test_runtime(dep, roles=[r for r in ROLES if r != "video"])
    rt.start()
    try:
        with TestClient(create_app(rt)) as client:
            yield {"client": client, "rt": rt, "dep": dep, "procs": procs}
    finally:
        rt.stop()
        for proc in procs:
            proc.terminate()
            proc.join(20)
        r = redis.Redis.from_url(REDIS_URL)
        drop_keys(r, dep.services.stream_prefix)
        r.close()


def _health(client: Any, cid: str) -> dict:
    r = client.get(f"/api/v1/cameras/{cid}", headers=KEY)
    return r.json()["health"] if r.status_code == 200 else {"state": f"http {r.status_code}"}


def test_camera_changes_cross_to_the_video_process_and_survive_its_restart(split):
    client, procs = split["client"], split["procs"]
    assert client.post("/api/v1/cameras", headers=KEY, json=CAMERA).status_code == 201
    health = wait_for(lambda: (h := _health(client, "cam-added"))["state"] == "online" and (h["fps"] or 0) > 0 and h, 30,
                      interval=0.2, what="the video process attaching the camera added through the API, decoding")
    assert health["detail"]["worker"].endswith(f"-{procs[0].pid}")
    snap = wait_for(lambda: (r := client.get("/api/v1/cameras/cam-added/snapshot.jpg", headers=KEY)).status_code == 200 and r,
                    10, interval=0.2, what="a snapshot")
    assert snap.content[:2] == b"\xff\xd8" and len(snap.content) > 10_000

    # An alarm filed in a process without cameras gets the nearby camera's picture from Redis, saved as evidence.
    from ingest.geo import GeoPoint

    [[evidence]] = split["rt"].snapshots_near([GeoPoint(lon=120.1052, lat=30.2761)])
    saved = split["rt"].evidence_dir / evidence.path
    assert evidence.path.startswith("snapshots/") and "cam-added" in evidence.path and saved.read_bytes()[:2] == b"\xff\xd8"

    # A live viewer's watch key raises the picture rate from ~1 fps to up to 10: 8 new pictures within 3 s.
    rt = split["rt"]
    seen: set[float] = set()

    def pictures() -> bool:
        rt.camera_state.watch("cam-added")
        at = rt.camera_state.overlay("cam-added").get("captured_at")
        if at is not None:
            seen.add(at)
        return len(seen) >= 8

    wait_for(pictures, 3.0, interval=0.05, what="pictures at the live rate while watched")

    # A change of analysis reaches the role: the camera is re-configured, not dropped.
    wait_for(lambda: (_health(client, "cam-added").get("detail", {}).get("process_fps") or 0) > 3.5, 20, interval=0.3,
             what="analysis at the configured 5 fps first")
    changed = {**CAMERA, "name": "改名", "analysis": {"fps": 2}}
    assert client.put("/api/v1/cameras/cam-added", headers=KEY, json=changed).status_code == 200
    wait_for(lambda: 0 < (_health(client, "cam-added").get("detail", {}).get("process_fps") or 0) <= 3.0, 20, interval=0.3,
             what="analysis at the new 2 fps")

    # The video process dies; its successor picks the API's camera up again from Redis.
    procs[0].kill()
    procs[0].join(10)
    procs.append(start_role_process(split["dep"], "video"))
    wait_for(lambda: _health(client, "cam-added").get("detail", {}).get("worker", "").endswith(f"-{procs[1].pid}"), 40,
             interval=0.3, what="the restarted video process publishing the API's camera")

    assert client.delete("/api/v1/cameras/cam-added", headers=KEY).status_code == 204
    r = redis.Redis.from_url(REDIS_URL)
    from detectors.camera_state import CameraKeys

    keys = CameraKeys(split["dep"].services.stream_prefix)
    wait_for(lambda: not r.exists(keys.status("cam-added")) and not r.exists(keys.jpeg("cam-added")), 10, interval=0.2,
             what="the removed camera's state gone from Redis")
    r.close()
