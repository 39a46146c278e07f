"""`gridwatch run` is a supervisor: every role its own process, each restarted after SIGKILL under load
with nothing lost, and no process left behind when the supervisor stops or dies.

Real processes on the demo district (real clips, real model, real Redis, broker and SQLite): load is
anomalies on the intake stream (as cameras publish them), signed one-key presses and smoke readings
over MQTT. Each role process in turn is killed with SIGKILL while the load runs.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest
import redis
from sqlalchemy import select

from tests.conftest import footage, model
from tests.fault.support import Producer, ledger
from tests.roles.support import ROLES, Box, Gridwatch, alive, demo_copy
from tests.support import wait_for

REDIS_URL = "redis://127.0.0.1:6379/0"
SMOKE = 24
BOXES = {"stb-0001": "demo-stb-0001-secret", "stb-0002": "demo-stb-0002-secret"}


def _drop(client: redis.Redis, prefix: str) -> None:
    for pattern in (f"{prefix}:*", "\\{" + prefix + "\\}:*"):
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)


def _smoke_filed(store) -> set[str]:  # noqa: ANN001
    from alerts.models import Occurrence

    with store.read() as s:
        return set(s.scalars(select(Occurrence.source_id).where(Occurrence.source_id.like("smoke-t%"))))


@pytest.mark.timeout(300)
def test_roles_are_processes_restarted_after_sigkill_under_load_losing_nothing(tmp_path, stream_prefix):
    model("yolov8n_int8.onnx")
    footage("plaza_pedestrians_720p.avi")
    from alerts.store import open_store
    from alerts.streams import StreamKeys

    config, topic_prefix = demo_copy(tmp_path, stream_prefix, extra_smoke=SMOKE, claim_idle_s=5)
    client = redis.Redis.from_url(REDIS_URL)
    gw = Gridwatch(config, tmp_path / "gridwatch.log")
    box: Box | None = None
    stop = threading.Event()
    try:
        gw.up()
        # Every role is its own child process of the supervisor, named by its command line.
        kids = wait_for(lambda: (k := gw.children()) and set(k) == set(ROLES) and k, 30, what="six role processes")
        assert len(set(kids.values())) == 6 and gw.proc.pid not in kids.values()
        board = wait_for(lambda: (r := gw.status()["roles"]) and set(r) == set(ROLES) and r, 20, what="roles in /status")
        assert {name: row["pid"] for name, row in board.items()} == kids
        assert all(row["state"] == "running" and row["restarts"] == 0 for row in board.values())
        # The API holds no camera: status and pictures come from the video process through Redis.
        cams = wait_for(lambda: (c := gw.status()["cameras"]).get("cam-plaza", {}).get("state") == "online" and c, 60,
                        what="cam-plaza online as the video process reports it")
        assert cams["cam-plaza"]["worker"].endswith(f"-{kids['video']}")
        snap = wait_for(lambda: (r := gw.get("/cameras/cam-plaza/snapshot.jpg")).status_code == 200 and r, 20,
                        what="a snapshot from the video process")
        assert snap.content[:2] == b"\xff\xd8" and len(snap.content) > 10_000

        # Load: camera anomalies on the intake stream, presses and smoke readings over MQTT.
        producer = Producer(REDIS_URL, stream_prefix)
        feeder = threading.Thread(target=producer.run, args=(1000, stop, 40.0), daemon=True)
        feeder.start()
        box = Box(topic_prefix)
        pressed: list[str] = []

        def presses() -> None:
            i = 0
            while not stop.wait(0.25):
                device = list(BOXES)[i % 2]
                press_id = f"p{i}-{uuid.uuid4().hex[:6]}"
                box.press(device, BOXES[device], press_id)
                pressed.append(press_id)
                i += 1

        presser = threading.Thread(target=presses, daemon=True)
        presser.start()
        smoked = 0
        restarted: dict[str, int] = {}
        for role in ("intake", "devices", "video", "notify", "sla", "api"):
            old = gw.children()[role]
            for _ in range(SMOKE // 6):  # readings that reach the broker while the role is down or coming back
                box.reading(f"smoke-t{smoked:02d}", {"smoke": 15.0})
                smoked += 1
            os.kill(old, signal.SIGKILL)
            new = wait_for(lambda: (p := gw.children().get(role)) not in (None, old) and p, 30,
                           what=f"the supervisor restarting {role}")
            restarted[role] = new
            if role == "api":
                gw.up(60)
        stop.set()
        feeder.join(30)
        presser.join(10)
        assert smoked == SMOKE

        # Nothing lost: every anomaly filed once, every press answered with a case, every smoke alarm filed.
        store = open_store(f"sqlite:///{tmp_path / 'run' / 'gridwatch.db'}")
        keys = StreamKeys(stream_prefix)
        try:
            wait_for(lambda: ledger(store, keys, client, producer.sent)["lost_count"] == 0, 90, interval=0.5,
                     what="every anomaly sent during the kills filed")
        except AssertionError:
            raise AssertionError(f"not every anomaly filed: {ledger(store, keys, client, producer.sent)}") from None
        result = ledger(store, keys, client, producer.sent)
        assert result["occurrence_dupes"] == 0, result
        wait_for(lambda: set(pressed) <= {a["press_id"] for a in box.answers}, 60, interval=0.5,
                 what=f"every one of {len(pressed)} presses answered")
        wait_for(lambda: _smoke_filed(store) == {f"smoke-t{i:02d}" for i in range(SMOKE)}, 60, interval=0.5,
                 what="every smoke alarm filed")
        # The supervisor says so: each role restarted once, running again under its new pid.
        board = wait_for(lambda: (r := gw.status()["roles"]) and all(r[n]["pid"] == restarted[n] for n in ROLES) and r, 20,
                         what="the restarts in /status")
        assert all(row["restarts"] == 1 and row["last_exit"] == -signal.SIGKILL for row in board.values()), board
        assert "role intake (pid" in gw.log() and "exited with -9" in gw.log()
        # The devices process's MQTT counters reach the API's status through Redis.
        ingest = wait_for(lambda: gw.status()["mqtt_ingest"], 20, interval=0.5, what="ingest counters in /status")
        assert [row["connected"] for row in ingest.values()] == [True] and list(ingest.values())[0]["received"] > 0

        # SIGTERM of the supervisor stops every role process; none is left behind.
        pids = list(gw.children().values())
        assert gw.terminate() == 0
        wait_for(lambda: not any(alive(p) for p in pids), 20, what="no role process left")

        # Presses: each answered with its case number, also those the killed devices process had taken from the
        # durable press stream (another filer, here its restarted successor, takes them over when the lease lapses,
        # and sends the box its case: the box never retries here, as a box that was told 'queued' need not).
        missing = set(pressed) - set(box.acks)
        stuck = [a for a in box.answers if a["press_id"] in missing]
        assert not missing, f"{len(missing)} of {len(pressed)} presses without a case; their answers: {stuck[:10]}"
    finally:
        stop.set()
        if box is not None:
            box.close()
        gw.kill_all()
        _drop(client, stream_prefix)


@pytest.mark.timeout(90)
def test_sigkill_of_the_supervisor_takes_its_roles_with_it(tmp_path, stream_prefix):
    config, _ = demo_copy(tmp_path, stream_prefix)
    gw = Gridwatch(config, tmp_path / "gridwatch.log", "--roles", "intake,sla")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        kids = wait_for(lambda: (k := gw.children()) and set(k) == {"intake", "sla"} and k, 60, what="two role processes")
        gw.proc.send_signal(signal.SIGKILL)  # no clean-up code runs: the kernel's parent-death signal does it
        gw.proc.wait(10)
        wait_for(lambda: not any(alive(p) for p in kids.values()), 20, what="the orphaned roles to exit")
    finally:
        gw.kill_all()
        _drop(client, stream_prefix)
