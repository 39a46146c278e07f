"""The event wall in a real Chromium holds alerts only: a camera playing the real plaza clip with the default motion
rule records motion as activity for a while, then one alert is filed — the wall shows that card and no motion card."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import FOOTAGE, PLAZA, REDIS_URL, build_test_runtime, drop_keys, make_deployment, snapshot  # noqa: E402
from tests.support import free_port, wait_for  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/bin/chromium)"),
    pytest.mark.skipif(not (FOOTAGE / "plaza_pedestrians_720p.avi").exists(), reason="shared footage is absent"),
]
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    import redis
    import uvicorn

    from gateway.app import create_app

    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path / "yolo"))
    dep = make_deployment(tmp_path)
    plaza = next(c for c in dep.cameras if c.id == "cam-plaza")
    plaza.rules = [r for r in plaza.rules if r.kind == "motion"]  # the default tier: activity
    plaza.source.fallback = None
    dep.cameras = [plaza]
    dep.detection.model.path = None  # motion alone: the CPU stays free for the browser
    dep.detection.motion.cooldown_s = 2
    dep.gateway.port = free_port()
    runtime = build_test_runtime(dep, sources=True)
    runtime.start()
    srv = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=dep.gateway.port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, 30, what="uvicorn to start")
    try:
        yield {"url": f"http://127.0.0.1:{dep.gateway.port}", "runtime": runtime}
    finally:
        srv.should_exit = True
        thread.join(15)
        runtime.stop()
        client = redis.Redis.from_url(REDIS_URL)
        drop_keys(client, dep.services.stream_prefix)
        client.close()


def test_wall_holds_the_alert_and_no_motion_card(server: dict) -> None:
    from alerts.review import ReviewFilter, review_items
    from ingest.anomaly import Anomaly

    rt = server["runtime"]
    motion = lambda: review_items(rt.store, ReviewFilter(tier="activity", kind="motion"))[0]  # noqa: E731
    wait_for(lambda: len(motion()) >= 3, 60, interval=0.5, what="three motion records from the real clip")
    alert = rt.intake.file(Anomaly(kind="intrusion", source="camera", source_id="cam-plaza", zone="plaza", location=PLAZA,
                                   title="区域入侵", evidence=[snapshot(rt.evidence_dir)]))
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 820})
            page.goto(f"{server['url']}/#/login")
            page.fill("#username", "operator")
            page.fill("#password", "operator123")
            page.click("#login-submit")
            page.wait_for_selector("#wall-cards")
            page.wait_for_selector(f"article.card[data-id='{alert.ticket_id}']", timeout=30_000)
            cards = page.eval_on_selector_all("article.card", "els => els.map(e => e.getAttribute('data-id'))")
        finally:
            browser.close()
    assert cards == [str(alert.ticket_id)]
    assert len(motion()) >= 3  # motion went on being recorded, off the wall
