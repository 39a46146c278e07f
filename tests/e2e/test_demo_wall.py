"""The demo as shipped (`gridwatch run`, real clips, real model): once every camera has recorded motion, the
event wall and the ticket list hold no motion-only case — motion is activity on the camera timelines."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from ..conftest import REPO, footage, model
from .test_demo_run import _demo_copy
from tests.support import free_port, wait_for

DEMO_CAMERAS = {"cam-plaza", "cam-crossing", "cam-garages", "cam-office", "cam-campus"}


@pytest.mark.timeout(240)
def test_demo_wall_shows_no_motion_only_card(tmp_path, stream_prefix, redis_client):
    model("yolov8n_int8.onnx")
    footage("plaza_pedestrians_720p.avi")
    port = free_port()
    log = open(tmp_path / "gridwatch.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", _demo_copy(tmp_path, stream_prefix),
                             "--port", str(port)], cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "gridwatch.log").read_text()[-3000:]
                return False

        wait_for(up, 60, what="the console to answer")
        token = httpx.post(f"{base}/auth/token", data={"username": "operator", "password": "operator123"}).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}

        def motion_cameras() -> set[str]:
            page = httpx.get(f"{base}/review", params={"tier": "activity", "kind": "motion", "limit": 200}, headers=auth)
            assert page.status_code == 200, page.text
            return {i["camera_id"] for i in page.json()["items"]}

        # Every demo camera saw motion at least once: under the old behaviour each of these was a wall card.
        wait_for(lambda: motion_cameras() >= DEMO_CAMERAS, 120, interval=1.0, what="motion activity on every camera")
        wall = httpx.get(f"{base}/wall", headers=auth).json()["items"]
        assert [c for c in wall if c["kind"] == "motion"] == [], wall
        tickets = httpx.get(f"{base}/tickets", params={"limit": 500}, headers=auth).json()["items"]
        assert [t["number"] for t in tickets if t["kind"] == "motion"] == []
        alerts = httpx.get(f"{base}/review", params={"tier": "alert", "limit": 200}, headers=auth).json()["items"]
        assert {i["kind"] for i in alerts} <= {"crowd", "loitering", "illegal_parking", "fire_smoke", "fall", "intrusion",
                                                "tamper", "camera_offline"}, alerts
        # a motion record carries its evidence, served to the operator
        item = httpx.get(f"{base}/review", params={"tier": "activity", "limit": 1}, headers=auth).json()["items"][0]
        assert item["snapshot_url"], item
        snap = httpx.get(f"{base}{item['snapshot_url']}", headers=auth)
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
