"""`gridwatch run` on the demo district, as the README's first command runs it (real clips, real model), started
once for this module; each test checks one thing a user sees on that same run, in the order they would:

1. the console answers, every demo camera comes online, and a ticket from the demo cameras reaches a grid's
   duty queue within 60 s;
2. once every camera has recorded motion, the event wall and the ticket list hold no motion-only case —
   motion is activity on the camera timelines;
3. Ctrl-C stops the whole run cleanly.
"""
from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from ..conftest import footage, model
from tests.roles.support import Gridwatch, demo_copy
from tests.support import wait_for

DEMO_CAMERAS = {"cam-plaza", "cam-crossing", "cam-garages", "cam-office", "cam-campus"}
pytestmark = pytest.mark.timeout(240)


class Demo:
    """The running demo and what the tests read back from it."""

    def __init__(self, gw: Gridwatch, prefix: str, client: redis.Redis):
        self.gw, self.prefix, self.client = gw, prefix, client
        self.started = time.monotonic()
        self.api = f"{gw.base}/api/v1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    model("yolov8n_int8.onnx")  # the demo as shipped: real clips and the real model (skip where absent)
    footage("building_fire_smoke_hoodcam.mp4")
    footage("plaza_pedestrians_720p.avi")
    tmp = tmp_path_factory.mktemp("demo")
    prefix = f"gwtest-{uuid.uuid4().hex[:10]}"
    config, _topics = demo_copy(tmp, prefix)
    client = redis.Redis()
    gw = Gridwatch(config, tmp / "gridwatch.log")
    try:
        yield Demo(gw, prefix, client)
    finally:
        if gw.proc.poll() is None:
            gw.kill_all()
        for pattern in (f"{prefix}:*", "\\{" + prefix + "\\}:*"):  # plain and hash-tagged names
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
        client.close()


def test_demo_district_puts_a_camera_ticket_on_a_grid_queue_within_60_s(demo: Demo) -> None:
    gw = demo.gw
    gw.up(60)
    assert f"GridWatch console: http://127.0.0.1:{gw.port}/" in gw.log()
    auth = gw.auth("dispatcher", "dispatcher123")

    def queued_ticket():
        for key in demo.client.scan_iter("\\{" + demo.prefix + "\\}:duty:*", count=1000):
            name = key.decode()
            if name.count(":") == 2 and demo.client.type(key) == b"stream" and demo.client.xlen(key):
                return name, demo.client.xrange(key, count=1)[0]
        return None

    queue, (_, fields) = wait_for(queued_ticket, 60, what="a camera ticket on a grid duty queue")
    elapsed = time.monotonic() - demo.started
    ticket = httpx.get(f"{demo.api}/tickets/{fields[b'ticket_id'].decode()}", headers=auth).json()
    assert ticket["source"]["kind"] == "camera"
    assert queue.endswith(ticket["unit_code"]) and len(ticket["grid_code"]) == 15
    status = httpx.get(f"{demo.api}/status", headers=auth).json()
    assert not status["motion_only"], status["detector"]
    assert {c["state"] for c in status["cameras"].values()} == {"online"}, status["cameras"]
    print(f"first camera ticket on {queue} {elapsed:.1f} s after start")


def test_demo_wall_shows_no_motion_only_card(demo: Demo) -> None:
    demo.gw.up(60)
    base, auth = demo.api, demo.gw.auth("operator", "operator123")

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


def test_ctrl_c_stops_the_demo_cleanly(demo: Demo) -> None:
    """Runs last in this module: it stops the demo the others read."""
    demo.gw.up(60)
    code = demo.gw.interrupt(30)
    assert code in (0, -signal.SIGINT, 130), demo.gw.log()[-3000:]
