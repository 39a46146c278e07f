"""`gridwatch run` on the demo district, as the README's first command runs it: the console answers,
every demo camera comes online, and a ticket from the demo cameras reaches a grid's duty queue within 60 s."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from ..conftest import DEMO, FOOTAGE, MODELS, REPO, footage, model
from tests.support import free_port, wait_for



def _demo_copy(tmp_path, prefix: str) -> str:
    """The demo file with its own run dir, stream prefix and MQTT client id; paths made absolute."""
    text = DEMO.read_text(encoding="utf-8")
    for old, new in {
        "run_dir: ../run": f"run_dir: {tmp_path / 'run'}",
        "stream_prefix: gw": f"stream_prefix: {prefix}",
        "file: grids/qingshui.geojson": f"file: {REPO / 'config' / 'grids' / 'qingshui.geojson'}",
        "footage_dir: ../../shared/footage": f"footage_dir: {FOOTAGE}\n  mqtt: {{client_id: {prefix}-ingest}}",
        "path: ../../shared/models/yolov8n_int8.onnx": f"path: {MODELS / 'yolov8n_int8.onnx'}",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.timeout(180)
def test_demo_district_puts_a_camera_ticket_on_a_grid_queue_within_60_s(tmp_path, stream_prefix, redis_client):
    model("yolov8n_int8.onnx")  # the demo as shipped: real clips and the real model (skip where absent)
    footage("building_fire_smoke_hoodcam.mp4")
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(tmp_path / "gridwatch.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", _demo_copy(tmp_path, stream_prefix), "--port", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.monotonic()
    try:
        base = f"http://127.0.0.1:{port}"

        def up():
            try:
                return httpx.get(f"{base}/api/v1/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "gridwatch.log").read_text()
                return False

        wait_for(up, 60, what="the console to answer")
        assert f"GridWatch console: http://127.0.0.1:{port}/" in (tmp_path / "gridwatch.log").read_text()
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "dispatcher", "password": "dispatcher123"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        def queued_ticket():
            for key in redis_client.scan_iter("\\{" + stream_prefix + "\\}:duty:*", count=1000):
                name = key.decode()
                if name.count(":") == 2 and redis_client.type(key) == b"stream" and redis_client.xlen(key):
                    return name, redis_client.xrange(key, count=1)[0]
            return None

        queue, (_, fields) = wait_for(queued_ticket, 60, what="a camera ticket on a grid duty queue")
        elapsed = time.monotonic() - started
        ticket = httpx.get(f"{base}/api/v1/tickets/{fields[b'ticket_id'].decode()}", headers=auth).json()
        assert ticket["source"]["kind"] == "camera"
        assert queue.endswith(ticket["unit_code"]) and len(ticket["grid_code"]) == 15
        status = httpx.get(f"{base}/api/v1/status", headers=auth).json()
        assert not status["motion_only"], status["detector"]
        assert {c["state"] for c in status["cameras"].values()} == {"online"}, status["cameras"]
        print(f"first camera ticket on {queue} {elapsed:.1f} s after start")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert proc.returncode in (0, -signal.SIGINT, 130), (tmp_path / "gridwatch.log").read_text()[-3000:]
