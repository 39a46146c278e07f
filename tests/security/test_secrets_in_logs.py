"""No secret ever reaches a log: a full ``gridwatch run`` with unique secrets everywhere, exercised, then grepped.

Every password, the JWT signing key, every API key, every device secret, a webhook secret and the
password inside a camera URL are replaced by unique random strings. The process is driven through
logins (right and wrong), API-key calls, a signed one-key alarm, a forged one, a camera probe with
credentials in its URL; then it is stopped and its stdout/stderr (at DEBUG, ``-v``) and every text
file it wrote under its run directory are searched for each secret. Real Redis, real broker,
real SQLite, real HTTP.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fault.support import free_port, port_open, wait_for

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"

pytestmark = pytest.mark.timeout(180)


def _secret(tag: str) -> str:
    return f"S3cr{tag}{secrets.token_hex(8)}"


def test_no_configured_secret_appears_in_logs_or_run_files(tmp_path):
    try:
        import gateway.runtime  # noqa: F401
        from ingest.devices import signed_headers
    except ImportError as exc:
        pytest.skip(f"the full runtime is not importable yet: {exc}")
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    data["grids"]["file"] = str(DEMO.parent / data["grids"]["file"])
    data.setdefault("ingest", {})["footage_dir"] = str((DEMO.parent / data.get("ingest", {}).get("footage_dir", "../../shared/footage")).resolve())
    data["ingest"]["allow_private_sources"] = True
    if "model" in data.get("detection", {}) and "path" in data["detection"]["model"]:
        data["detection"]["model"]["path"] = str((DEMO.parent / data["detection"]["model"]["path"]).resolve())
    port = free_port()
    data["services"] = {"redis_url": os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0"),
                        "mqtt_url": "mqtt://127.0.0.1:1883", "run_dir": str(tmp_path / "run"),
                        "sql_url": f"sqlite:///{tmp_path / 'run' / 'gw.db'}",
                        "stream_prefix": f"gwsec-{uuid.uuid4().hex[:8]}", "autostart": False}
    gw = data.setdefault("gateway", {})
    gw.update(host="127.0.0.1", port=port, bcrypt_rounds=4, secret_key=_secret("jwt"))
    found["gateway.secret_key"] = gw["secret_key"]
    for user in gw["users"]:
        user["password"] = _secret("pw")
        found[f"password of {user['username']}"] = user["password"]
    api_key = _secret("key")
    gw["users"] = [u for u in gw["users"] if u["username"] != "integrator"]
    gw["users"].append({"username": "integrator", "password": _secret("pw"), "role": "integrator", "api_key": api_key})
    found["password of integrator"] = gw["users"][-1]["password"]
    found["api key"] = api_key
    for dev in data.get("devices", []):
        if "secret" in dev:
            dev["secret"] = _secret("dev")
            found[f"secret of {dev['id']}"] = dev["secret"]
    hook = _secret("hook")
    data.setdefault("alerts", {})["webhooks"] = [{"url": f"http://127.0.0.1:{free_port()}/hook", "secret": hook}]
    found["webhook secret"] = hook
    cam_pw = _secret("cam")
    found["camera URL password"] = cam_pw
    data["cameras"] = [c for c in data.get("cameras", [])][:1] + [{
        "id": "cam-secret", "name": "credentialed", "source": {"url": f"rtsp://admin:{cam_pw}@127.0.0.1:{free_port()}/live"},
        "pose": {"position": {"lon": 120.105, "lat": 30.276}, "bearing_deg": 0, "height_m": 5, "fov_deg": 90}}]
    cfg = tmp_path / "deploy.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    log_path = tmp_path / "gridwatch.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "yolo"))
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "-v", "run", "--config", str(cfg)], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: port_open(port) or proc.poll() is not None, 90, "gridwatch run listening")
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                last = tail.strip().splitlines()[-1] if tail.strip() else ""
                if last.startswith(("AttributeError", "ImportError", "ModuleNotFoundError")):
                    pytest.skip(f"gridwatch run does not start yet (parts not wired together): {last}")
                raise AssertionError(tail)
            base = f"http://127.0.0.1:{port}/api/v1"
            with httpx.Client(base_url=base, timeout=20) as http:
                users = {u["username"]: u["password"] for u in gw["users"]}
                for name, pw in list(users.items())[:4]:
                    assert http.post("/auth/token", data={"username": name, "password": pw}).status_code == 200
                    http.post("/auth/token", data={"username": name, "password": pw + "x"})   # wrong: near-miss of a secret
                tok = http.post("/auth/token", data={"username": "admin", "password": users["admin"]}).json()["access_token"]
                h = {"Authorization": f"Bearer {tok}"}
                http.get("/tickets", headers=h)
                http.get("/cameras", headers={"X-API-Key": api_key})
                http.get("/cameras", headers={"X-API-Key": api_key + "x"})
                http.post("/cameras/probe", json={"url": f"rtsp://admin:{cam_pw}@127.0.0.1:{free_port()}/x", "timeout_s": 2}, headers=h)
                stb = next(d for d in data["devices"] if d.get("type") == "set_top_box")
                body = json.dumps({"device": stb["id"], "press_id": uuid.uuid4().hex[:12], "kind": "press"}).encode()
                r = http.post("/alarms/press", content=body, headers={**signed_headers(stb["id"], stb["secret"], body),
                                                                      "Content-Type": "application/json"})
                assert r.status_code in (200, 201, 202), r.text
                forged = signed_headers(stb["id"], stb["secret"] + "x", body)
                assert http.post("/alarms/press", content=body, headers={**forged, "Content-Type": "application/json"}).status_code == 401
                http.post("/auth/logout", headers=h)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
    texts = {"stdout/stderr": log_path.read_text(encoding="utf-8", errors="replace")}
    for f in (tmp_path / "run").rglob("*"):
        if f.is_file() and f.suffix in (".log", ".jsonl", ".json", ".txt", ".yaml", ".conf", ""):
            texts[str(f.relative_to(tmp_path))] = f.read_text(encoding="utf-8", errors="replace")
    assert "GridWatch" in texts["stdout/stderr"] or len(texts["stdout/stderr"]) > 0
    leaks = [f"{what} in {where}" for what, value in found.items() for where, text in texts.items() if value in text]
    print(f"[security] secrets-in-logs: {len(found)} secrets, {sum(len(t) for t in texts.values())} bytes of logs "
          f"in {len(texts)} files, {len(leaks)} leaks")
    assert leaks == [], leaks


def test_in_process_gateway_logs_no_secret(client, app, caplog):
    """The same check on the gateway's own runtime (runs even before the full process starts): DEBUG on every logger."""
    import logging

    from gw_support import INTEGRATOR_KEY, PASSWORDS

    dep = app.state.runtime.deployment
    found = {"jwt key": dep.gateway.secret_key, "api key": INTEGRATOR_KEY}
    found.update({f"password of {u}": pw for u, pw in PASSWORDS.items()})
    found.update({f"secret of {d.id}": (d.secret.get_secret_value() if hasattr(d.secret, "get_secret_value") else d.secret)
                  for d in dep.devices if getattr(d, "secret", None)})
    app.state.login_limit.__init__(100000)
    with caplog.at_level(logging.DEBUG):
        for user, pw in PASSWORDS.items():
            client.post("/api/v1/auth/token", data={"username": user, "password": pw})
            client.post("/api/v1/auth/token", data={"username": user, "password": pw + "x"})
        client.get("/api/v1/cameras", headers={"X-API-Key": INTEGRATOR_KEY})
        client.get("/api/v1/cameras", headers={"X-API-Key": INTEGRATOR_KEY + "x"})
        client.post("/api/v1/alarms/press", content=b"{}", headers={"X-GW-Device": "stb-0001", "X-GW-Timestamp": "1",
                                                                     "X-GW-Nonce": "abcdefgh12", "X-GW-Signature": "0" * 64})
    text = caplog.text + "".join(f.read_text(errors="replace") for f in dep.run_dir.rglob("*.jsonl"))
    leaks = [what for what, value in found.items() if value and value in text]
    assert leaks == [], leaks
