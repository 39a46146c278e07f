"""Fixtures of the device tests: unique MQTT topic prefixes on the shared broker, private Mosquitto
brokers on free ports (for restarts and ACLs), a dead-letter sink on the real Redis, and a small registry."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from alerts.config import AlertsConfig
from alerts.grids import load_grid_file
from alerts.intake import Intake
from alerts.store import open_store
from alerts.streams import StreamKeys, dead_letter
from ingest.config import DeviceConfig, MqttConfig
from ingest.devices import DeviceRegistry
from ingest.devices.acl import mosquitto_conf
from ingest.geo import GeoPoint
from tests.support import free_port, port_open, wait_for

MQTT_URL = os.environ.get("GRIDWATCH_TEST_MQTT", "mqtt://127.0.0.1:1883")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def poll(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """``tests.support.wait_for`` with the finer interval the MQTT tests use."""
    return wait_for(predicate, timeout, interval, what)


class Broker:
    """A private Mosquitto with persistence in a temp dir; ``restart()`` stops it gracefully and starts it again."""

    def __init__(self, workdir: Path, passwd: Path | None = None, acl: Path | None = None) -> None:
        if not Path(MOSQUITTO).exists():
            pytest.skip("mosquitto is not installed")
        self.port = free_port()
        self.dir = workdir
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        extra = f"log_dest file {workdir / 'mosquitto.log'}\n"
        if os.geteuid() == 0:  # Mosquitto started as root drops to user 'mosquitto', who cannot write our temp dir
            extra += "user root\n"
        self.conf.write_text(mosquitto_conf(self.port, passwd, acl, workdir / "data") + extra)
        self.proc: subprocess.Popen | None = None
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        poll(lambda: port_open(self.port) or self.proc.poll() is not None, 10, what="mosquitto listening")
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()[-500:]}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: the broker writes its persistence file
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def broker_factory(tmp_path):
    started: list[Broker] = []

    def make(**kw) -> Broker:
        b = Broker(tmp_path / f"broker{len(started)}", **kw)
        started.append(b)
        return b.start()

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def mqtt_cfg() -> MqttConfig:
    """A topic prefix, shared group and client id no other test uses."""
    tag = uuid.uuid4().hex[:10]
    return MqttConfig(topic_prefix=f"gwtest/{tag}/v1", client_id=f"gwtest-ingest-{tag}", shared_group=f"g{tag}",
                      session_expiry_s=300)


def device(id: str, type: str = "smoke", secret: str | None = "s3cr3t-" + "x" * 8, **kw) -> DeviceConfig:
    return DeviceConfig(id=id, type=type, location=kw.pop("location", GeoPoint(lon=120.1051, lat=30.2551)),
                        secret=secret and f"{secret}-{id}", **kw)


@pytest.fixture
def registry() -> DeviceRegistry:
    return DeviceRegistry([
        device("smoke-1", "smoke", address="清河南社区 服务中心"),
        device("gas-1", "gas"),
        device("water-1", "water_level"),
        device("manhole-1", "manhole_tilt"),
        device("door-1", "door"),
        device("fence-1", "fence"),
        device("stb-1", "set_top_box", household="清河北社区 3幢1单元101", location=GeoPoint(lon=120.1052, lat=30.2761)),
        device("stb-2", "set_top_box", household="明月南社区 8幢2单元502", location=GeoPoint(lon=120.1351, lat=30.2532)),
    ])


class DeadLetters:
    """``on_reject`` exactly as the runtime wires it: into the Redis dead-letter stream (test prefix)."""

    def __init__(self, client, prefix: str) -> None:
        self.client = client
        self.keys = StreamKeys(prefix)

    def __call__(self, source: str, reason: str, payload: bytes) -> None:
        dead_letter(self.client, self.keys, source, reason, payload)

    def entries(self) -> list[dict[str, str]]:
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in self.client.xrange(self.keys.deadletter)]

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.entries()]


@pytest.fixture
def dead_letters(redis_client, stream_prefix) -> DeadLetters:
    return DeadLetters(redis_client, stream_prefix)


@pytest.fixture
def sqlite_intake(tmp_path, redis_client, stream_prefix):
    """The case system's real synchronous intake on SQLite (demo grids and categories)."""
    from tests.conftest import DEMO

    demo = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    grids = load_grid_file(DEMO.parent / demo["grids"]["file"], version=str(demo["grids"]["version"]))
    store = open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    store.sync_grids(grids)
    yield Intake(store, grids, AlertsConfig.model_validate({**demo["alerts"], "case_prefix": "QS"}), redis_client,
                 StreamKeys(stream_prefix), consumer="devices-test")
    store.close()
