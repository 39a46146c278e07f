"""Probes of a real role process: ``gridwatch run --roles devices --health-port P`` on its own Redis and broker.

Killing a dependency (SIGKILL) makes the role not ready, naming the dependency and nothing else, while
it stays live (a Kubernetes restart would not bring Redis back); bringing it back makes it ready again.
The API answers the same probes on its own port, without authentication.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fault.support import REPO, OwnMosquitto, OwnRedis, free_port, wait_for, write_deployment
from tests.support import stop_process

pytestmark = pytest.mark.timeout(300)
START_S = 150.0  # a role process imports the whole stack; the shared CI machine is slow


def _get(port: int, path: str) -> tuple[int, dict]:
    answer = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    return answer.status_code, answer.json()


def _ready(port: int) -> tuple[int, dict] | None:
    try:
        return _get(port, "/readyz")
    except httpx.HTTPError:
        return None


def test_a_role_is_not_ready_while_its_redis_or_broker_is_down(tmp_path: Path) -> None:
    own_redis, broker = OwnRedis(tmp_path), OwnMosquitto(tmp_path)
    own_redis.start()
    broker.start()
    config = write_deployment(tmp_path, redis_url=own_redis.url, mqtt_url=broker.url, port=free_port())
    port = free_port()
    log = open(tmp_path / "role.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--roles", "devices", "--config", str(config),
                             "--health-port", str(port), "--health-host", "127.0.0.1"], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _ready(port) == (200, {"status": "ok"}) or proc.poll() is not None, START_S, "devices role ready")
        assert proc.poll() is None, (tmp_path / "role.log").read_text()[-2000:]
        assert _get(port, "/healthz") == (200, {"status": "ok"})

        broker.kill()
        assert wait_for(lambda: _ready(port) == (503, {"status": "fail", "failing": ["mqtt"]}), 30, "not ready: mqtt")
        assert _get(port, "/healthz") == (200, {"status": "ok"})  # live: restarting the pod would not help
        broker.start()
        wait_for(lambda: _ready(port) == (200, {"status": "ok"}), 60, "ready again after the broker came back")

        own_redis.kill()
        code, body = wait_for(lambda: _ready(port) if _ready(port) and _ready(port)[0] == 503 else None, 30, "not ready: redis")
        assert "redis" in body["failing"] and set(body) == {"status", "failing"}
        assert _get(port, "/healthz") == (200, {"status": "ok"})
        own_redis.start()
        wait_for(lambda: _ready(port) == (200, {"status": "ok"}), 60, "ready again after Redis came back")
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    finally:
        stop_process(proc)
        log.close()
        broker.stop()
        own_redis.stop()


def test_the_api_answers_probes_without_authentication(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    sys.path.insert(0, str(REPO / "tests" / "gateway"))
    from gw_support import build_test_runtime, make_deployment

    from gateway.app import create_app

    rt = build_test_runtime(make_deployment(tmp_path))
    try:
        with TestClient(create_app(rt)) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json() == {"status": "fail", "failing": ["started"]}
            rt.start()
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ok" and set(ready.json()) <= {"status", "degraded"}
    finally:
        rt.stop()
