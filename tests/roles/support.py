"""`gridwatch run` as a user starts it — the supervisor and its role processes — on a copy of the demo.

The copy gets its own run dir, Redis prefix, MQTT topic prefix and client id (tests share the
services), absolute paths to the grids, footage and model, and optionally extra smoke sensors.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import DEMO, FOOTAGE, MODELS, REPO
from tests.support import free_port, wait_for

ROLES = ("api", "intake", "sla", "notify", "devices", "video")


def demo_copy(tmp: Path, prefix: str, *, extra_smoke: int = 0, claim_idle_s: float | None = None) -> tuple[Path, str]:
    """The demo file for this test; returns (path, MQTT topic prefix). ``claim_idle_s``: how soon a restarted
    intake takes over the entries its killed predecessor left pending (the demo's default is 30 s)."""
    topic_prefix = f"gwtest/{prefix}/v1"
    text = DEMO.read_text(encoding="utf-8")
    for old, new in {
        "run_dir: ../run": f"run_dir: {tmp / 'run'}",
        "stream_prefix: gw": f"stream_prefix: {prefix}",
        "file: grids/qingshui.geojson": f"file: {REPO / 'config' / 'grids' / 'qingshui.geojson'}",
        "footage_dir: ../../shared/footage": f"footage_dir: {FOOTAGE}\n  mqtt: {{client_id: {prefix}-ingest, topic_prefix: {topic_prefix}}}",
        "path: ../../shared/models/yolov8n_int8.onnx": f"path: {MODELS / 'yolov8n_int8.onnx'}",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    if claim_idle_s is not None:
        text = text.replace("alerts:\n", f"alerts:\n  intake_claim_idle_s: {claim_idle_s}\n", 1)
    extra = "".join(f"  - {{id: smoke-t{i:02d}, type: smoke, address: 测试烟感 {i}, location: {{lon: 120.1051, lat: 30.2551}}, "
                    f"secret: test-smoke-{i:02d}-secret}}\n" for i in range(extra_smoke))
    text = text.replace("\ngateway:\n", "\n" + extra + "\ngateway:\n", 1) if extra else text
    path = tmp / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    return path, topic_prefix


def children_of(pid: int) -> dict[str, int]:
    """Role process name (``api``, ``devices-0of2`` …) → pid, for the live children of ``pid`` (from /proc)."""
    out: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            state = stat.rsplit(")", 1)[1].split()[0]
            if ppid != pid or state == "Z":
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        args = [a.decode() for a in argv if a]
        if "--roles" in args:
            name = args[args.index("--roles") + 1]
            if "--devices-partition" in args:
                i, n = args[args.index("--devices-partition") + 1].split("/")
                name = f"{name}-{i}of{n}"
            out[name] = int(entry.name)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Gridwatch:
    """The supervisor process; ``children()`` reads its role processes from /proc."""

    def __init__(self, config: Path, log_path: Path, *extra: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(config), "--port", str(self.port),
                                      *extra], cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._tokens: dict[str, str] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> dict[str, int]:
        return children_of(self.proc.pid)

    def up(self, timeout: float = 90) -> None:
        def answers() -> bool:
            assert self.proc.poll() is None, self.log()[-3000:]
            try:
                return httpx.get(f"{self.base}/api/v1/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, timeout, interval=0.2, what="the API role to answer")

    def auth(self, username: str = "admin", password: str = "admin123") -> dict[str, str]:
        """The bearer header of a demo account (logged in once per account)."""
        if username not in self._tokens:
            r = httpx.post(f"{self.base}/api/v1/auth/token", data={"username": username, "password": password}, timeout=10)
            assert r.status_code == 200, r.text
            self._tokens[username] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    def status(self) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/api/v1/status", headers=self.auth(), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}/api/v1{path}", headers=self.auth(), timeout=10)

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM the supervisor, as an init system stops it; its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C in the terminal (SIGINT to the supervisor's process group); SIGKILL if it is still there after
        ``timeout``. Its exit code."""
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                return self.proc.wait()
        finally:
            self._log.close()

    def kill_all(self) -> None:
        """Cleanup after a failed test: the supervisor's session, whatever is left of it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the supervisor's session: it and any child left
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


class Box:
    """Set-top boxes and sensors on MQTT: QoS 1, persistent session; records acks by press id."""

    def __init__(self, topic_prefix: str, port: int = 1883):
        self.prefix = topic_prefix
        self.acks: dict[str, dict[str, Any]] = {}  # press id → the ack that carried its case number
        self.answers: list[dict[str, Any]] = []  # every ack, with or without a case
        self.puback: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gwtest-box-{uuid.uuid4().hex[:8]}",
                                  clean_session=False, protocol=mqtt.MQTTv311)
        self.client.max_queued_messages_set(0)
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_publish = lambda c, u, mid, rc, p: self.puback.add(mid)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"{topic_prefix}/devices/+/ack", qos=1)
        assert subscribed.wait(10), "subscription to acks not confirmed"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        ack = json.loads(msg.payload)
        with self._lock:
            self.answers.append(ack)
            if ack.get("case"):
                self.acks[ack["press_id"]] = ack

    def press(self, device: str, secret: str, press_id: str) -> int:
        from ingest.devices.signing import signed_envelope

        body = json.dumps({"device": device, "press_id": press_id, "kind": "press", "at": time.time()}).encode()
        return self.client.publish(f"{self.prefix}/devices/{device}/events", signed_envelope(device, secret, body), qos=1).mid

    def reading(self, device: str, metrics: dict[str, float]) -> int:
        body = json.dumps({"device": device, "metrics": metrics})
        return self.client.publish(f"{self.prefix}/devices/{device}/telemetry", body, qos=1).mid

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
