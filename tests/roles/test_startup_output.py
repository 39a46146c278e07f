"""`gridwatch run` says what matters at start-up (#19.7): the console URL, each role started with its pid,
which became ready and which part is degraded — and not the libraries' chatter (alembic's plugin and
"Context impl / Will assume" lines, ultralytics' model-loading lines repeated per model copy).

The real CLI on a copy of the demo, with the broker pointed at a socket that accepts connections but never
speaks MQTT: start-up's service check passes, the devices role cannot be ready, and the summary must say so.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from tests.roles.support import children_of, demo_copy
from tests.support import free_port, stop_process, wait_for
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(420)
TRAINED = "report classifier trained on"
CHATTER = ("setup plugin", "Context impl", "Will assume", "Loading ", "Using ONNX Runtime", "for ONNX Runtime inference")


def test_start_up_prints_the_url_the_roles_and_what_is_degraded(tmp_path: Path) -> None:
    prefix = f"gwtest-{uuid.uuid4().hex[:8]}"
    config, _ = demo_copy(tmp_path, prefix)
    mute = socket.socket()  # listens (the kernel completes the handshake) but never answers MQTT's CONNECT
    mute.bind(("127.0.0.1", 0))
    mute.listen(64)
    text = config.read_text(encoding="utf-8").replace("mqtt_url: mqtt://127.0.0.1:1883",
                                                       f"mqtt_url: mqtt://127.0.0.1:{mute.getsockname()[1]}\n  autostart: false")
    config.write_text(text, encoding="utf-8")
    port = free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(config), "--port", str(port),
                                 "--roles", "api,intake,devices,video", "--video-workers", "1"], cwd=REPO,
                                env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1"), stdout=stdout, stderr=stderr)
        try:
            children = wait_for(lambda: len(children_of(proc.pid)) == 4 and "started: " in out.read_text(encoding="utf-8")
                                and children_of(proc.pid), 120, what="four role processes")
            wait_for(lambda: "DEGRADED: devices" in out.read_text(encoding="utf-8") or proc.poll() is not None, 360,
                     interval=0.5, what="the start-up summary")
            wait_for(lambda: TRAINED in err.read_text(encoding="utf-8") or proc.poll() is not None, 120,
                     interval=0.5, what="the API role's classifier warm-up")
        finally:
            stop_process(proc, signal.SIGINT, 60)
            _drop(prefix)
            mute.close()
    printed = out.read_text(encoding="utf-8")
    logged = err.read_text(encoding="utf-8")
    assert f"GridWatch console: http://127.0.0.1:{port}/" in printed, printed
    started = dict(re.findall(r"(\w+) \(pid (\d+)\)", printed.split("started: ", 1)[1].splitlines()[0]))
    assert {k: int(v) for k, v in started.items()} == children, (printed, children)
    ready_line = next(line for line in printed.splitlines() if line.startswith("ready after"))
    assert {"api", "intake", "video"} <= set(ready_line.split(": ", 1)[1].split(", ")), printed
    degraded = next(line for line in printed.splitlines() if line.startswith("DEGRADED: devices"))
    assert "mqtt" in degraded and "DEGRADED: video" not in printed and "DEGRADED: api" not in printed, printed
    for line in CHATTER:
        assert line not in printed and line not in logged, (line, printed, logged[-3000:])
    assert printed.count("GridWatch console") == 1
    # Only the API suggests categories, so only its process fits the report classifier (~17 s of CPU each); the intake
    # and devices roles build the same channels and never fit.
    assert logged.count(TRAINED) == 1, logged[-3000:]


def _drop(prefix: str) -> None:
    client = redis.Redis()
    for pattern in (f"{prefix}:*", "\\{" + prefix + "\\}:*"):
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)
