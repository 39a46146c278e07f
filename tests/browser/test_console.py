"""The web console in a real Chromium against a real server: real clip → motion → live event → WebRTC → ticket → sign.

The server is what ``gridwatch run`` starts: the video role in a process of its own holding the one camera
(the real plaza clip), the other roles with ``create_app`` under uvicorn in the test's process, so the live
event, snapshot, WebRTC and MJPEG views all cross from the video process through Redis; a free port, a unique Redis prefix and SQLite in a temp dir. Screenshots of each main
page go to tests/artifacts/screenshots/ (docs/screenshots/ only with GRIDWATCH_UPDATE_SCREENSHOTS=1).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import FOOTAGE, REDIS_URL, AppServer, build_test_runtime, drop_keys, start_role_process  # noqa: E402
from tests.support import free_port, screenshot_dir  # noqa: E402
from tests.browser.browser_support import CHROMIUM, browser, browser_deployment, login, new_page  # noqa: E402,F401  (browser: a fixture)

SHOTS = screenshot_dir()

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/bin/chromium)"),
    pytest.mark.skipif(not (FOOTAGE / "plaza_pedestrians_720p.avi").exists(), reason="shared footage is absent"),
]
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import redis

    dep = browser_deployment(tmp_path_factory, "console")
    plaza = next(c for c in dep.cameras if c.id == "cam-plaza")
    plaza.rules = [r.model_copy(update={"tier": "alert"}) for r in plaza.rules if r.kind == "motion"]  # motion tickets
    plaza.source.fallback = None  # the real clip or nothing
    plaza.analysis.fps = 5
    dep.cameras = [plaza]
    dep.detection.model.path = None          # motion-only keeps two CPU cores free for the browser and encoder
    dep.detection.motion.cooldown_s = 5
    dep.gateway.port = free_port()
    from gateway.runtime import ROLES

    video = start_role_process(dep, "video")
    runtime = srv = None
    try:
        runtime = build_test_runtime(dep, sources=True, roles=[r for r in ROLES if r != "video"])
        runtime.start()
        srv = AppServer(runtime, dep.gateway.port)
        srv.start()
        yield {"url": f"http://127.0.0.1:{dep.gateway.port}", "runtime": runtime, "video": video}
    finally:  # whatever failed above, nothing this fixture started outlives it
        if srv is not None and srv.thread is not None:
            srv.stop()
        if runtime is not None:
            runtime.stop()
        video.terminate()
        video.join(20)
        client = redis.Redis.from_url(REDIS_URL)
        drop_keys(client, dep.services.stream_prefix)
        client.close()


_login = login  # one login step for every browser test (tests/browser/browser_support.py)


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def test_operator_to_worker_flow(server: dict, browser: Any) -> None:
    base = server["url"]
    errors: list[str] = []
    ctx, page = new_page(browser, errors)
    page.goto(base)
    page.wait_for_selector("#login-form")
    _shot(page, "login")

    # 1. the operator sees a live event from the real clip arrive on the wall, with its ticket card
    _login(page, base, "operator", "operator123")
    page.wait_for_selector("#wall-cards")
    page.wait_for_selector(".feed-item[data-source='cam-plaza']", timeout=60_000)
    card = page.wait_for_selector("article.card[data-status='reported']", timeout=60_000)
    ticket_id = card.get_attribute("data-id")
    page.wait_for_function("() => { const i = document.querySelector('article.card img.thumb'); return i && i.naturalWidth > 0; }",
                           timeout=20_000)
    _shot(page, "wall")

    # the camera is decoded in the video process, not this one: its status names that process
    cams = server["runtime"].status()["cameras"]
    assert server["runtime"].video is None and cams["cam-plaza"]["worker"].endswith(f"-{server['video'].pid}")

    # 2. the live view decodes frames over WebRTC: the <video> has a size and its time advances
    page.goto(f"{base}/#/live/cam-plaza")
    page.wait_for_function("() => { const v = document.getElementById('live-video'); return v && v.videoWidth > 0; }",
                           timeout=45_000)
    t0 = page.evaluate("document.getElementById('live-video').currentTime")
    page.wait_for_function(f"() => document.getElementById('live-video').currentTime > {t0} + 1.0", timeout=20_000)
    width = page.evaluate("document.getElementById('live-video').videoWidth")
    assert width >= 320
    _shot(page, "live")
    # the MJPEG fallback shows frames too
    page.click("#use-mjpeg")
    page.wait_for_function("() => { const i = document.getElementById('live-mjpeg'); return i && !i.hidden && i.naturalWidth > 0; }",
                           timeout=20_000)

    # the map draws the grid polygons and the ticket as a dot
    page.goto(f"{base}/#/map")
    page.wait_for_selector("#map[data-loaded]")
    assert ticket_id in page.evaluate("gwMapView.ids('tickets')")
    assert page.locator("#map path.grid.lvl-grid").count() == 16
    _shot(page, "map")

    # 3. confirm the event: the ticket is dispatched to the plaza grid
    page.goto(f"{base}/#/wall")
    page.click(f"article.card[data-id='{ticket_id}'] button.confirm")
    page.wait_for_selector(f"article.card[data-id='{ticket_id}']", state="detached", timeout=15_000)
    page.goto(f"{base}/#/ticket/{ticket_id}")
    page.wait_for_selector("table.history")
    assert "已派遣" in page.inner_text("main h2")
    _shot(page, "ticket")

    # 4. a worker of another grid cannot see it
    page.click("#logout")
    _login(page, base, "worker_my4", "worker123")
    page.wait_for_selector(".queue")
    assert page.locator(f".qcard[data-id='{ticket_id}']").count() == 0
    page.goto(f"{base}/#/ticket/{ticket_id}")
    page.wait_for_selector("main p.error")
    assert "无权限" in page.inner_text("main")
    page.click("#logout")

    # 5. the plaza grid's worker signs for it on the mobile duty queue
    mobile = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN")
    phone = mobile.new_page()
    phone.on("pageerror", lambda e: errors.append("phone: " + (e.stack or str(e))))
    _login(phone, base, "worker_qh1", "worker123")
    phone.wait_for_selector(f".qcard[data-id='{ticket_id}'] button[data-action='sign']")
    _shot(phone, "queue")
    phone.click(f".qcard[data-id='{ticket_id}'] button[data-action='sign']")
    phone.click("dialog button[value='ok']")
    phone.wait_for_selector(f".qcard[data-id='{ticket_id}'][data-status='signed']", timeout=15_000)
    ticket = server["runtime"].cases.get_ticket(int(ticket_id))
    assert ticket["status"] == "signed" and ticket["assignee"] == "worker_qh1"
    mobile.close()

    # the supervisor's KPI dashboard and the camera manager render; English is one click away
    _login(page, base, "supervisor", "supervisor123")
    page.wait_for_selector(".kpi svg.chart")
    _shot(page, "kpi")
    page.click("#logout")
    _login(page, base, "admin", "admin123")
    page.goto(f"{base}/#/cameras")
    page.wait_for_selector("tr[data-id='cam-plaza']")
    # the camera list names the video worker that analyses the camera and its host
    assert page.inner_text("tr[data-id='cam-plaza'] .owner") == f"{cams['cam-plaza']['worker']} @ {cams['cam-plaza']['host']}"
    page.click("tr[data-id='cam-plaza'] button")
    page.wait_for_function("() => { const c = document.querySelector('canvas.zone-canvas'); return c && c.dataset.loaded === '1'; }",
                           timeout=15_000)
    _shot(page, "cameras")
    page.click("#lang")
    page.wait_for_selector("#nav-wall")
    assert page.inner_text("#nav-wall") == "Event wall"
    assert not errors, errors
    ctx.close()
