"""Helpers of the fault tests: private Redis / Mosquitto / PostgreSQL databases that a test may kill,
an intake worker process that may be ``kill -9``-ed, a producer of anomalies, and the ledger that
says what was in flight, what was lost and what was duplicated.

Nothing here touches the system Redis on 6379 or the system broker on 1883: every server a fault
test kills is its own, on a free port, with its data in the test's temp dir.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support import free_port, port_open, stop_process  # noqa: F401  (fault tests import them from here)

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("GRIDWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Places inside the demo district (see tests/alerts/helpers.py): one per street, so routing spreads.
PLACES = [(120.105, 30.276), (120.135, 30.253), (120.118, 30.262), (120.128, 30.271)]


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy (returning it); fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - a server that is still coming up answers with errors
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s}s")
        threading.Event().wait(interval_s)


class OwnRedis:
    """A redis-server of the test's own, with the durability ``gridwatch run`` gives its own Redis
    (gateway/local_services.py): AOF, ``appendfsync everysec``. Each write reaches the kernel before Redis
    replies, so a SIGKILL of the server loses nothing acknowledged; only a power cut could lose the last
    second (docs/RELIABILITY.md)."""

    def __init__(self, workdir: Path, fsync: str = "everysec", bind: str = "127.0.0.1"):
        self.fsync, self.bind = fsync, bind  # bind: space-separated addresses (the multi-host test adds its own)
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", self.bind, "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), 10, f"own redis on {self.port}")

    def kill(self) -> None:
        """SIGKILL: the power-cut case (no shutdown save; only the AOF survives)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, grace_s=10)


class OwnMosquitto:
    """A mosquitto of the test's own with persistence (QoS 1 sessions survive a restart)."""

    def __init__(self, workdir: Path, extra_conf: str = ""):
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            pytest.skip("mosquitto is not installed")
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.dir = workdir / "mosquitto"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        # Started as root, Mosquitto drops to user 'mosquitto', which cannot write the test's temp dir: the
        # persistence file would silently never be written and every "restart" would be a cold start.
        run_as = "user root\n" if os.geteuid() == 0 else ""
        self.log = self.dir / "mosquitto.log"
        auth = "" if "allow_anonymous" in extra_conf else "allow_anonymous true\n"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n{auth}persistence true\n"
            f"persistence_location {self.dir}/\nautosave_interval 1\nautosave_on_changes true\n"
            f"max_queued_messages 100000\nset_tcp_nodelay true\n{run_as}log_dest file {self.log}\n"
            f"log_type error\nlog_type warning\nlog_type notice\n{extra_conf}", encoding="utf-8")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, 10, f"own mosquitto on {self.port}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode(errors='replace')[-500:]}")

    def kill(self) -> None:
        """SIGKILL: the broker's host loses power; only the last autosave (every second) survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_process(self.proc, sig, grace_s=10)


class PgDatabase:
    """A PostgreSQL database of the test's own, which the test can close to connections and reopen."""

    def __init__(self) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        self.name = f"gwfault_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with self.admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.name}"'))
        except Exception as exc:  # pragma: no cover - depends on the machine
            self.admin.dispose()
            pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
        self.url = make_url(PG_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)

    def _sql(self, statement: str) -> None:
        from sqlalchemy import text

        with self.admin.connect() as c:
            c.execute(text(statement))

    def close_to_connections(self) -> None:
        """The outage: no new connection is allowed and every open one is cut."""
        self._sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        self._sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.name}'")

    def reopen(self) -> None:
        self._sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')

    def drop(self) -> None:
        try:
            self.reopen()
            self._sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.name}'")
            self._sql(f'DROP DATABASE IF EXISTS "{self.name}"')
        finally:
            self.admin.dispose()


def _wait_killed(proc: "subprocess.Popen | None", log: Any, failpoint: str | None, timeout_s: float,
                 tail: Callable[[], str]) -> int:
    """Wait for a process's armed fail point to SIGKILL it (its exit code, -9 when it fired), then close its log;
    fail with the log's tail when it never fires."""
    assert proc is not None
    try:
        code = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"fail point {failpoint} never fired: {tail()}") from None
    log.close()
    return code


class IntakeProcess:
    """``tests/fault/intake_worker.py`` as a child process: the part of GridWatch a kill -9 hits."""

    def __init__(self, redis_url: str, sql_url: str, prefix: str, consumer: str, log_path: Path,
                 claim_idle_s: float = 1.0, failpoint: str | None = None, script: str = "intake_worker.py"):
        self.args = [sys.executable, str(Path(__file__).with_name(script)), "--redis", redis_url,
                     "--sql", sql_url, "--prefix", prefix, "--consumer", consumer, "--claim-idle", str(claim_idle_s)]
        self.log_path = log_path
        self.failpoint = failpoint
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("GRIDWATCH_FAILPOINT", None)
        if self.failpoint:  # ingest/failpoints.py: the process SIGKILLs itself at that point
            env["GRIDWATCH_FAILPOINT"] = self.failpoint
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop/kill
        self.proc = subprocess.Popen(self.args, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_killed(self, timeout_s: float) -> int:
        """Wait for the armed fail point to kill the process; returns its exit code (-9 when it fired)."""
        return _wait_killed(self.proc, self._log, self.failpoint, timeout_s, lambda: self.log_path.read_text()[-2000:])

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, grace_s=15)
            self._log.close()


@dataclass
class Producer:
    """Publishes numbered anomalies like a camera pipeline does, retrying while Redis is away.

    A retry after a lost reply can put the same anomaly on the stream twice: the intake must file it once.
    ``sent`` holds every anomaly id whose XADD was confirmed at least once.
    """

    redis_url: str
    prefix: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    sent: list[str] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def anomaly(self, i: int, **kw: Any):  # noqa: ANN201
        from ingest.anomaly import Anomaly
        from ingest.geo import GeoPoint

        lon, lat = PLACES[i % len(PLACES)]
        # A distinct zone per anomaly: every one opens its own ticket (camera merges are per camera+zone+kind).
        fields = dict(kind="crowd", source="camera", source_id=f"cam-{self.tag}-{i % 4}", zone=f"z{i}",
                      location=GeoPoint(lon=lon, lat=lat), title=f"fault test {i}")
        fields.update(kw)
        return Anomaly(**fields)

    def run(self, count: int, stop: threading.Event, rate_hz: float = 200.0) -> None:
        import redis

        from alerts.streams import StreamKeys, publish_anomaly

        keys = StreamKeys(self.prefix)
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=1)
        try:
            for i in range(count):
                a = self.anomaly(i)
                while not stop.is_set():
                    try:
                        publish_anomaly(client, keys, a)
                        self.sent.append(a.id)
                        break
                    except redis.RedisError as exc:
                        self.retries += 1
                        if len(self.errors) < 5:
                            self.errors.append(str(exc))
                        stop.wait(0.05)
                if stop.is_set():
                    return
                stop.wait(1.0 / rate_hz)
        finally:
            client.close()


def ledger(store: Any, keys: Any, client: Any, sent: list[str]) -> dict[str, Any]:
    """What the system holds for the ``sent`` anomaly ids: filed, lost, duplicated, duty entries per ticket."""
    from collections import Counter

    from sqlalchemy import func, select

    from alerts.events import DUTY_GROUP
    from alerts.intake import INTAKE_GROUP
    from alerts.models import Occurrence, Ticket

    with store.read() as s:
        occ = Counter(s.scalars(select(Occurrence.anomaly_id)))
        tickets = s.execute(select(Ticket.id, Ticket.unit_code, Ticket.status)).all()
        n_tickets = s.scalar(select(func.count()).select_from(Ticket))
    sent_set = set(sent)
    duty_entries: Counter = Counter()
    for unit in {t.unit_code for t in tickets}:
        for _eid, fields in client.xrange(keys.duty(unit)):
            duty_entries[int(fields[b"ticket_id"])] += 1
    dispatched = [t.id for t in tickets if t.status == "dispatched"]
    pending = client.xpending(keys.anomalies, INTAKE_GROUP)
    groups = {g["name"].decode(): g for g in client.xinfo_groups(keys.anomalies)}
    lag = groups[INTAKE_GROUP].get("lag") if INTAKE_GROUP in groups else None
    _ = DUTY_GROUP
    return {
        "sent": len(sent_set),
        "filed": len(sent_set & set(occ)),
        "lost": sorted(sent_set - set(occ))[:10],
        "lost_count": len(sent_set - set(occ)),
        "occurrence_dupes": sum(1 for v in occ.values() if v > 1),
        "tickets": n_tickets,
        "dispatched_without_duty_entry": [t for t in dispatched if duty_entries[t] == 0][:10],
        "duty_dupes": sum(1 for t in dispatched if duty_entries[t] > 1),
        "pending": int(pending["pending"] if isinstance(pending, dict) else pending[0]),
        "lag": lag,
    }


class IntakeRig:
    """The intake side of a fault test: a real store, the test's own Redis, the stream keys, a producer of numbered
    anomalies and the threads the test runs (feeder, in-process intake); ``ledger()`` says what is filed, lost and
    duplicated. ``close()`` stops the threads and closes what it opened."""

    def __init__(self, redis_url: str, prefix: str, sql_url: str, **client_kw: Any):
        import redis

        from alerts.store import open_store
        from alerts.streams import StreamKeys

        self.redis_url, self.prefix, self.sql_url = redis_url, prefix, sql_url
        self.store = open_store(sql_url)
        self.keys = StreamKeys(prefix)
        self.client = redis.Redis.from_url(redis_url, **client_kw)
        self.producer = Producer(redis_url, prefix)
        self.stop_feed, self.stop_intake = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []

    def intake(self, consumer: str, **kw: Any) -> Any:
        """An ``Intake`` over this store and Redis as ``gateway.runtime`` builds it, dispatching at once
        (``confirm_sources = []``) so duty queues are part of what is checked; the store gets the demo's grids."""
        from alerts.grids import load_grid_file
        from alerts.intake import Intake
        from gateway.config import load_deployment

        dep = load_deployment()
        dep.alerts.confirm_sources = []
        grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
        self.store.sync_grids(grids)
        return Intake(self.store, grids, dep.alerts, self.client, self.keys, consumer=consumer, **kw)

    def run_intake(self, intake: Any, block_ms: int = 200) -> threading.Thread:
        """The intake's loop in a thread, exactly as the runtime runs it (``run_forever``), until ``close()``."""
        return self._start(intake.run_forever, self.stop_intake, block_ms)

    def feed(self, total: int, rate_hz: float) -> threading.Thread:
        """The producer publishing ``total`` anomalies at ``rate_hz`` in a thread (retrying while Redis is away)."""
        return self._start(self.producer.run, total, self.stop_feed, rate_hz)

    def _start(self, target: Callable[..., Any], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def ledger(self) -> dict[str, Any]:
        return ledger(self.store, self.keys, self.client, self.producer.sent)

    def wait_filed(self, timeout_s: float = 60) -> None:
        """Until every anomaly the producer sent is filed (an occurrence in the store)."""
        wait_for(lambda: self.ledger()["lost_count"] == 0, timeout_s, "every anomaly filed")

    def wait_drained(self, timeout_s: float = 30) -> None:
        """Until the anomaly stream holds nothing pending and nothing unread for the intake group."""
        wait_for(lambda: (lambda o: o["pending"] == 0 and o["lag"] == 0)(self.ledger()), timeout_s, "stream drained")

    def close(self) -> None:
        self.stop_feed.set()
        self.stop_intake.set()
        for thread in self._threads:
            thread.join(15)
        self.store.close()
        self.client.close()


def case_workers(role: str, redis_url: str, sql_url: str, prefix: str, tmp: Path, names: tuple[str, str],
                 failpoint: str, *role_args: str, successor_claim_idle_s: float = 1.0) -> tuple[IntakeProcess, IntakeProcess]:
    """``tests/fault/case_worker.py --role ROLE``: the first armed with ``failpoint`` (it SIGKILLs itself there),
    its successor unarmed; logs ``a.log`` and ``b.log`` in ``tmp``."""
    first = IntakeProcess(redis_url, sql_url, prefix, names[0], tmp / "a.log", failpoint=failpoint, script="case_worker.py")
    second = IntakeProcess(redis_url, sql_url, prefix, names[1], tmp / "b.log", claim_idle_s=successor_claim_idle_s,
                           script="case_worker.py")
    for proc in (first, second):
        proc.args += ["--role", role, *role_args]
    return first, second


def report(name: str, **figures: Any) -> None:
    """Print one line of figures (shown with ``pytest -s``; also appended to run/fault-report.txt for the doc)."""
    line = f"[fault] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items())
    print(line)
    out = REPO / "run" / "fault-report.txt"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
    except OSError:
        pass


# The demo's sensors a ``Device`` publishes telemetry for (they fall in both halves of a 2-way devices partition).
DEVICES = ("smoke-0001", "water-0001", "manhole-0001")


class Device:
    """A device-like publisher: fixed client id, persistent session, unbounded client queue, PUBACKs counted."""

    def __init__(self, port: int, prefix: str):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.prefix = prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gwfault-dev-{uuid.uuid4().hex[:8]}",
                                  clean_session=False, protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.mid_seq: dict[int, int] = {}
        self.acked: set[int] = set()
        self.early: set[int] = set()  # PUBACKs that came before publish() returned its mid
        self.lock = threading.Lock()
        self.published = 0  # how many of feed()'s readings publish() has handed to paho so far
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        with self.lock:
            seq = self.mid_seq.pop(mid, None)
            if seq is None:
                self.early.add(mid)
            else:
                self.acked.add(seq)

    def publish(self, seq: int) -> None:
        dev = DEVICES[seq % len(DEVICES)]
        body = json.dumps({"device": dev, "metrics": {"seq": seq}})
        info = self.client.publish(f"{self.prefix}/devices/{dev}/telemetry", body, qos=1)
        with self.lock:
            if info.mid in self.early:
                self.early.discard(info.mid)
                self.acked.add(seq)
            else:
                self.mid_seq[info.mid] = seq

    def feed(self, total: int, rate_hz: float, stop: threading.Event) -> threading.Thread:
        """Readings ``seq`` 0 … total-1 at ``rate_hz`` in a thread, round-robin over ``DEVICES`` (until ``stop``)."""
        def load() -> None:
            for seq in range(total):
                if stop.is_set():
                    return
                self.publish(seq)
                self.published = seq + 1
                stop.wait(1.0 / rate_hz)

        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def settle(seen: list[int], wanted: set[int], timeout_s: float, quiet_s: float = 3.0) -> None:
    """Wait until every wanted reading arrived, or nothing new arrived for ``quiet_s`` (then stop waiting)."""
    deadline = time.monotonic() + timeout_s
    last_n, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        if wanted <= set(seen):
            return
        if len(seen) != last_n:
            last_n, last_change = len(seen), time.monotonic()
        elif time.monotonic() - last_change > quiet_s:
            return
        threading.Event().wait(0.1)


def runtime_deployment(tmp: Path, *, mqtt_url: str, redis_url: str = "redis://127.0.0.1:6379/0") -> Any:
    """The demo deployment pointed at the test's own broker, a unique Redis prefix, MQTT topic prefix and
    client id, SQLite and evidence in ``tmp``, no cameras and no object model (the MQTT/alarm side of
    ``gateway.runtime``; loading the ONNX model costs ~30 s on this machine and nothing here needs it)."""
    from gateway.config import load_deployment

    dep = load_deployment()
    tag = uuid.uuid4().hex[:10]
    dep.services.run_dir = str(tmp)
    dep.services.sql_url = f"sqlite:///{tmp}/gridwatch.db"
    dep.services.stream_prefix = f"gwfault-{tag}"
    dep.services.redis_url = redis_url
    dep.services.mqtt_url = mqtt_url
    dep.services.autostart = False
    dep.cameras = []
    dep.detection.model.path = None
    dep.gateway.secret_key = "fault-secret-" + uuid.uuid4().hex
    dep.ingest.mqtt.client_id = f"gwfault-ingest-{tag}"
    dep.ingest.mqtt.topic_prefix = f"gwfault/{tag}/v1"
    return dep


def drop_prefix(redis_url: str, prefix: str) -> None:
    """Delete every key a test wrote under its unique prefix."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for pattern in (f"{prefix}:*", "\\{" + prefix + "\\}:*"):  # plain and hash-tagged names
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
    finally:
        client.close()


def dead_letters(redis_url: str, prefix: str) -> list[dict[str, Any]]:
    """The dead-letter stream of a prefix, decoded (``source``, ``reason``, ``payload`` …)."""
    import redis

    from alerts.streams import StreamKeys

    client = redis.Redis.from_url(redis_url)
    try:
        return [{k.decode(): v for k, v in fields.items()} for _, fields in client.xrange(StreamKeys(prefix).deadletter)]
    finally:
        client.close()


def count_seq_readings(monkeypatch: Any) -> list[int]:
    """Record the ``seq`` value of every reading the sensor rules are handed (patched on the class, so it
    covers the engine a runtime builds later); the list fills as readings arrive."""
    from detectors.sensor_rules import SensorRuleEngine

    seen: list[int] = []
    original = SensorRuleEngine.on_reading

    def counting(self, reading):  # noqa: ANN001, ANN202
        if reading.metric == "seq":
            seen.append(int(reading.value))
        return original(self, reading)

    monkeypatch.setattr(SensorRuleEngine, "on_reading", counting)
    return seen


def write_deployment(tmp: Path, *, redis_url: str, mqtt_url: str, port: int, devices: list[Any] = (),
                     alerts: dict[str, Any] | None = None, mqtt: dict[str, Any] | None = None) -> Path:
    """A deployment file for a real ``gridwatch run`` of a fault test: the demo district (absolute paths),
    the test's Redis and broker, unique prefixes, SQLite and evidence in ``tmp``, no cameras, no object model,
    ``devices`` added to the demo's. Returns its path."""
    import yaml

    demo_path = REPO / "config" / "demo.yaml"
    doc = yaml.safe_load(demo_path.read_text(encoding="utf-8"))
    tag = uuid.uuid4().hex[:10]
    doc["services"] = {"redis_url": redis_url, "mqtt_url": mqtt_url, "sql_url": f"sqlite:///{tmp}/gridwatch.db",
                       "run_dir": str(tmp / "run"), "stream_prefix": f"gwfault-{tag}", "autostart": False}
    doc["grids"]["file"] = str((demo_path.parent / doc["grids"]["file"]).resolve())
    doc.setdefault("ingest", {})["footage_dir"] = str((demo_path.parent / doc["ingest"].get("footage_dir", ".")).resolve())
    doc["ingest"]["mqtt"] = {**doc["ingest"].get("mqtt", {}), "client_id": f"gwfault-ingest-{tag}",
                             "topic_prefix": f"gwfault/{tag}/v1", "shared_group": None, **(mqtt or {})}
    doc["detection"]["model"]["path"] = None
    doc["cameras"] = []
    doc["devices"] = list(doc.get("devices", [])) + [d.model_dump(mode="json", exclude_none=True) for d in devices]
    doc["gateway"].update({"host": "127.0.0.1", "port": port, "secret_key": "fault-secret-" + tag})
    if alerts:
        doc["alerts"].update(alerts)
    path = tmp / "deployment.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class GridwatchProcess:
    """``gridwatch run --config FILE`` as a child process, optionally with a fail point armed
    (``GRIDWATCH_FAILPOINT``, see ingest/failpoints.py): the whole product, killed where the test says."""

    def __init__(self, config: Path, port: int, log_path: Path, failpoint: str | None = None):
        """With a fail point every role runs in one process (``--one-process``), so the point's SIGKILL takes
        the whole product down at that instant (under the supervisor only one child would die, and its
        restart would inherit the armed point); without one it is ``gridwatch run`` as shipped, supervised."""
        self.config, self.port, self.log_path, self.failpoint = config, port, log_path, failpoint
        self.proc: subprocess.Popen | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_s: float = 90.0) -> "GridwatchProcess":
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        env.pop("GRIDWATCH_FAILPOINT", None)
        if self.failpoint:
            env["GRIDWATCH_FAILPOINT"] = self.failpoint
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait_killed/stop
        argv = [sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)]
        if self.failpoint:
            argv.append("--one-process")
        self.proc = subprocess.Popen(argv,
                                     cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._healthy() or self.proc.poll() is not None, ready_s, f"gridwatch run on {self.port}")
        if self.proc.poll() is not None:
            raise AssertionError(f"gridwatch run exited {self.proc.returncode}: {self.log_tail()}")
        return self

    def _healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/api/v1/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_killed(self, timeout_s: float) -> int:
        """Wait for the fail point to fire; the return code is -SIGKILL when it did."""
        return _wait_killed(self.proc, self._log, self.failpoint, timeout_s, self.log_tail)

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, grace_s=20)
        if self._log is not None and not self._log.closed:
            self._log.close()
