"""The monitoring-room pages in a real Chromium against a real server: the Leaflet map, the video wall on real
clips, the alarm pop-up on a signed press, and the big screen across a gateway restart.

The server is the real runtime + ``create_app`` under uvicorn on a free port: four cameras play real clips, a
fifth points at a port nobody listens on (its tile must say why it is dark), SQLite in a temp dir, a unique
Redis prefix. Screenshots go to docs/screenshots/ when GRIDWATCH_UPDATE_SCREENSHOTS=1, else tests/artifacts/.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import FOOTAGE, PLAZA, REDIS_URL, AppServer as Server, build_test_runtime, drop_keys, file_ticket  # noqa: E402
from ingest.geo import GeoPoint  # noqa: E402
from tests.browser.browser_support import CHROMIUM, browser, browser_deployment, login as _login, new_page as _page  # noqa: E402,F401
from tests.support import free_port, wait_for  # noqa: E402

SHOTS = REPO / "docs" / "screenshots" if os.environ.get("GRIDWATCH_UPDATE_SCREENSHOTS") == "1" else REPO / "tests" / "artifacts"
LIVE_CAMERAS = ("cam-plaza", "cam-crossing", "cam-garages", "cam-campus")

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/bin/chromium)"),
    pytest.mark.skipif(not (FOOTAGE / "plaza_pedestrians_720p.avi").exists(), reason="shared footage is absent"),
]
playwright_api = pytest.importorskip("playwright.sync_api")


def make_tiles(folder: Path) -> Path:
    """An offline tile folder over the demo district (z 12–17): grey squares with their z/x/y written on them."""
    import math

    import cv2
    import numpy as np

    for z in range(12, 18):
        n = 2 ** z
        x0, x1 = int((120.09 + 180) / 360 * n), int((120.15 + 180) / 360 * n)
        ty = lambda lat: int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)  # noqa: E731
        for x in range(x0, x1 + 1):
            for y in range(ty(30.29), ty(30.24) + 1):
                img = np.full((256, 256, 3), 40 + (x + y) % 2 * 12, np.uint8)
                cv2.putText(img, f"{z}/{x}/{y}", (10, 128), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (140, 140, 140), 1)
                (folder / str(z) / str(x)).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / str(z) / str(x) / f"{y}.png"), img)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import redis

    from gateway.config import User
    from tests.support import free_port as closed_port

    dep = browser_deployment(tmp_path_factory, "rooms")
    tmp = Path(dep.services.run_dir)
    cams = []
    for cam in dep.cameras:
        if cam.id in LIVE_CAMERAS:
            cam.rules = [r for r in cam.rules if r.kind == "motion"]
            cam.source.fallback = None  # the real clip or nothing
            cam.analysis.fps = 2
            cams.append(cam)
    broken = dep.cameras[[c.id for c in dep.cameras].index("cam-office")]
    broken.source.url = f"rtsp://127.0.0.1:{closed_port()}/nothing"
    broken.source.fallback = None
    broken.rules = []
    broken.health.reconnect_max_s = 2
    dep.ingest.allow_private_sources = True
    dep.cameras = cams + [broken]
    dep.detection.model.path = None          # motion-only keeps the CPU for the browser and the encoders
    dep.detection.motion.cooldown_s = 30
    from gateway.config import TileSource

    tiles = make_tiles(tmp / "tiles")
    dep.gateway.map_tiles = [TileSource(name="plain", dir=str(tiles), crs="WGS84", attribution="test tiles"),
                             TileSource(name="gcj", dir=str(tiles), crs="GCJ02", attribution="test tiles (GCJ-02)")]
    dep.alerts.early_warning.categories = ["0201"]   # the cameras' own motion cases (0101) would warn too
    dep.gateway.users.append(User(username="operator_my", password="operator123", role="operator", grids=["330199002"],
                                  display_name="明月街道值班员"))
    dep.gateway.login_per_minute = 100   # the module's tests log in ~15 times from one address within a minute or two
    dep.gateway.port = free_port()
    runtime = build_test_runtime(dep, sources=True)
    runtime.start()
    srv = Server(runtime, dep.gateway.port)
    srv.start()
    try:
        # the video role (worker processes) has reported the four clips as live before any page looks at them
        wait_for(lambda: all(runtime.camera_state.status(LIVE_CAMERAS).get(c, {}).get("state") == "online"
                             for c in LIVE_CAMERAS), 90, 0.5, "the live cameras reported online")
        yield {"url": f"http://127.0.0.1:{dep.gateway.port}", "runtime": runtime, "server": srv}
    finally:
        srv.stop()
        runtime.stop()
        client = redis.Redis.from_url(REDIS_URL)
        drop_keys(client, dep.services.stream_prefix)
        client.close()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def _fonts_ready(page: Any) -> None:
    """Wait until the bundled Noto Sans SC has loaded for the Chinese on the page (no system CJK font here)."""
    page.wait_for_function("() => document.fonts.check('14px \"Noto Sans SC\"', '网格') && document.fonts.status === 'loaded'")


def _focus_ticket_dot(page: Any, ticket_id: int) -> Any:
    """The ticket's dot on screen, out of its cluster (``gwMapView.focus``). A live ticket event redraws the ticket
    layer (map.js: ``load`` 500 ms after the event), which can land in the middle of focus's zoom animation and leave
    the dot folded in its cluster: so focus again (once a second, after each animation) until the dot is drawn."""
    dot = f".ticket-dot[data-id='{ticket_id}']"
    page.wait_for_function("""([sel, id]) => { const d = document.querySelector(sel);
        if (d && d.getBoundingClientRect().width > 0) return true; gwMapView.focus('tickets', id); return false; }""",
                           arg=[dot, ticket_id], polling=1000, timeout=30_000)
    return page.locator(dot)


def test_map_layers_and_click_through(server: dict, browser: Any) -> None:
    base, rt = server["url"], server["runtime"]
    tk = file_ticket(rt, where=GeoPoint(lon=120.1068, lat=30.2772))   # in the plaza grid, apart from the cameras' own dots
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    _login(page, base, "operator", "operator123")
    page.goto(f"{base}/#/map")
    page.wait_for_selector("#map[data-loaded]")
    assert page.locator("#map path.grid.lvl-grid").count() == 16
    assert page.locator("#map .camera-mark").count() == 5 and page.locator("#map path.camera-cone").count() == 5
    assert page.locator("#map .camera-mark.down").count() == 1          # the camera nobody serves is drawn as down
    assert sorted(page.evaluate("gwMapView.ids('devices')")) == ["manhole-0001", "smoke-0001", "stb-0001", "stb-0002", "water-0001"]
    assert str(tk.ticket_id) in page.evaluate("gwMapView.ids('tickets')")   # the cameras' own motion tickets are there too
    # the deployment's first base map is the offline folder, served by the gateway behind a media token
    page.wait_for_function("() => { const t = [...document.querySelectorAll('#map img.leaflet-tile')];"
                           " return t.length > 0 && t.every((i) => i.complete) && t.some((i) => i.naturalWidth === 256); }")
    assert "/api/v1/map/tiles/plain/" in page.get_attribute("#map img.leaflet-tile", "src")
    assert page.get_attribute("#map", "data-crs") == "WGS84"
    # the font is the bundled one, fetched from this server (nothing from outside)
    _fonts_ready(page)
    _shot(page, "map_tiles")
    # a GCJ-02 base map: the layers come again, offset to match it
    page.hover("#map .leaflet-control-layers")
    page.click("#map .leaflet-control-layers-base label:has-text('gcj') input")
    page.wait_for_selector("#map[data-crs='GCJ02']")
    from ingest.geo import wgs84_to_gcj02
    lon, lat = wgs84_to_gcj02(120.105, 30.276)
    page.wait_for_function("([lon, lat]) => { const m = document.querySelector(\"#map .camera-mark[data-id='cam-plaza']\");"
                           " if (!m) return false; const p = gwMapView.map.latLngToContainerPoint([lat, lon]);"
                           " const r = m.getBoundingClientRect(), b = document.getElementById('map').getBoundingClientRect();"
                           " return Math.abs(r.left + r.width / 2 - b.left - p.x) < 3 && Math.abs(r.top + r.height / 2 - b.top - p.y) < 3; }",
                           arg=[lon, lat])
    loads = int(page.get_attribute("#map", "data-loaded"))
    page.click("#map .leaflet-control-layers-base label:has-text('plain') input")
    page.wait_for_selector("#map[data-crs='WGS84']")
    page.wait_for_function(f"() => Number(document.getElementById('map').dataset.loaded) > {loads}")
    page.mouse.move(5, 400)   # the layer switcher folds away
    # a new ticket arrives live and lands on the map without a reload
    second = file_ticket(rt, where=PLAZA)
    page.wait_for_function(f"() => gwMapView.ids('tickets').includes('{second.ticket_id}')", timeout=15_000)
    # zoomed out the dots cluster; opening the cluster shows the dot, and a click opens the ticket
    _focus_ticket_dot(page, tk.ticket_id).click()
    page.wait_for_selector("main[data-page='ticket'] table.history")
    assert tk.number in page.inner_text("main h2")
    # a camera's marker opens its live view
    page.goto(f"{base}/#/map")
    page.wait_for_selector("#map[data-loaded]")
    page.click("#map .camera-mark[data-id='cam-crossing']")
    page.wait_for_selector("main[data-page='live']")
    assert "cam-crossing" in page.inner_text("main h2")
    # the picture starts (WebRTC video, or the MJPEG fallback) before logging out: a live page still negotiating
    # goes on asking the API after the logout, and its refused calls surface as page errors (a console finding)
    page.wait_for_function("() => { const v = document.getElementById('live-video'), m = document.getElementById('live-mjpeg');"
                           " return (v && v.videoWidth > 0) || (m && !m.hidden && m.naturalWidth > 0); }", timeout=45_000)
    page.click("#logout")
    # a worker of another grid gets their own grid only: one filled polygon, one camera, no plaza tickets
    _login(page, base, "worker_my4", "worker123")
    page.goto(f"{base}/#/map")
    page.wait_for_selector("#map[data-loaded]")
    assert page.locator("#map path.grid.lvl-grid").count() == 1
    assert [page.get_attribute("#map .camera-mark", "data-id")] == ["cam-crossing"]
    mine = {t["id"] for t in rt.cases.list_tickets(grids=["330199002002004"], open_only=True, limit=500).items}
    shown = {int(i) for i in page.evaluate("gwMapView.ids('tickets')")}
    assert shown == mine and tk.ticket_id not in shown and second.ticket_id not in shown
    assert not errors, errors
    ctx.close()


def test_the_map_stops_renewing_its_tile_token_once_left(server: dict, browser: Any) -> None:
    """The offline tiles' media token is renewed every minute while the map is open. Once the map is left (here by
    logging out) nothing more is asked: the renewal used to run on for the page's life, without a token after a
    logout (a refused call a minute) and once more for every visit to the map."""
    base = server["url"]
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    page.clock.install()  # the page's timers run on a clock the test can move on
    _login(page, base, "operator", "operator123")
    page.goto(f"{base}/#/map")
    page.wait_for_selector("#map[data-loaded]")
    page.wait_for_function("() => [...document.querySelectorAll('#map img.leaflet-tile')].some((i) => i.naturalWidth === 256)")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/auth/media-token" in r.url else None)

    def settled() -> None:
        """Every request the page has started so far has been reported (events arrive in order)."""
        with page.expect_request("**/api/v1/settings"):
            page.evaluate("fetch('/api/v1/settings')")

    page.clock.fast_forward(6 * 60_000)  # past the token's 5 minutes: the open map renews it
    wait_for(lambda: asked, what="the open map renewing its tile token")
    page.click("#logout")
    page.wait_for_selector("main[data-page='login']")
    settled()
    asked.clear()
    page.clock.fast_forward(6 * 60_000)
    settled()
    assert asked == [], asked
    ctx.close()


def test_a_logged_out_console_receives_no_live_events(server: dict, browser: Any) -> None:
    """Logging out closes the live socket at once (the login page closes it): a ticket filed afterwards reaches a
    console still logged in and not the one that logged out (the server drops a revoked token's socket only at its
    next check, up to 30 s later)."""
    base, rt = server["url"], server["runtime"]
    errors: list[str] = []
    pages = []
    for _ in range(2):
        ctx, page = _page(browser, errors)
        _login(page, base, "operator", "operator123")
        page.wait_for_selector("#live-state.dot.on", state="attached")
        pages.append((ctx, page))
    (_, left), (_, staying) = pages
    left.click("#logout")
    left.wait_for_selector("main[data-page='login']")
    before = {name: p.evaluate("window.gwLiveCount || 0") for name, p in (("left", left), ("staying", staying))}
    file_ticket(rt, where=PLAZA)
    staying.wait_for_function(f"() => (window.gwLiveCount || 0) > {before['staying']}", timeout=15_000)
    assert left.evaluate("window.gwLiveCount || 0") == before["left"]
    for ctx, _ in pages:
        ctx.close()


def test_401s_end_only_their_own_login_and_renew_the_token_once(server: dict, browser: Any) -> None:
    """A request sent under a login that has since ended (logged out, someone else logged in) answers 401: that answer
    must neither refresh nor clear the session of whoever is logged in now, nor send them to the login page. Within
    one login an expired token is renewed, once however many requests meet it."""
    base = server["url"]
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    _login(page, base, "operator", "operator123")
    page.wait_for_selector("main[data-page='wall']")
    late = page.evaluate("""async () => {
      const access = Auth.access, refresh = Auth.refresh, login = Auth.login;
      sessionStorage.setItem("gw.access", "an-ended-session");   // the request goes out under an ended login …
      sessionStorage.setItem("gw.login", "an-ended-login");
      const answer = api("/me").then(() => "ok", (e) => e.status);
      sessionStorage.setItem("gw.access", access);              // … and the current one is back before it answers
      sessionStorage.setItem("gw.login", login);
      return { status: await answer, same: Auth.access === access && Auth.refresh === refresh, hash: location.hash };
    }""")
    assert late == {"status": 401, "same": True, "hash": "#/wall"}, late
    assert page.evaluate("api('/me').then((me) => me.username)") == "operator"
    # within one login an expired token is still renewed and the request answered (the refresh keeps the login)
    renewed = page.evaluate("""async () => {
      const access = Auth.access, login = Auth.login;
      sessionStorage.setItem("gw.access", "an-expired-token");
      const me = await api("/me");
      return { user: me.username, renewed: Auth.access !== access && Auth.access !== "an-expired-token", login: Auth.login === login };
    }""")
    assert renewed == {"user": "operator", "renewed": True, "login": True}, renewed
    # several requests meeting the expired token at once renew it once: refresh tokens rotate, and a second refresh
    # with the same one is refused, which used to log the user out
    parallel = page.evaluate("""async () => {
      sessionStorage.setItem("gw.access", "an-expired-token");
      const answers = await Promise.all([1, 2, 3, 4].map(() => api("/me").then((me) => me.username, (e) => e.status)));
      return { answers, hash: location.hash, loggedIn: !!Auth.access };
    }""")
    assert parallel == {"answers": ["operator"] * 4, "hash": "#/wall", "loggedIn": True}, parallel
    ctx.close()
    assert not errors, errors


def test_a_live_reload_that_meets_an_ended_session_is_no_page_error(server: dict, browser: Any) -> None:
    """The ticket page reloads on the ticket's live events. When the session has ended by the time that reload asks the
    server (logged out in another tab, expired), the reload fails with 401: the console goes to the login page and no
    error escapes as an unhandled rejection (it did: a camera's ticket updates every few seconds, so a logout raced it)."""
    base, rt = server["url"], server["runtime"]
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    _login(page, base, "operator", "operator123")
    page.wait_for_selector("#live-state.dot.on")
    tk = file_ticket(rt, where=PLAZA)
    page.goto(f"{base}/#/ticket/{tk.ticket_id}")
    page.wait_for_selector("table.history")
    # the session ends under the open page (its socket stays), then the ticket changes: the live event reloads the page
    page.evaluate("""async (id) => {
      const access = Auth.access;
      sessionStorage.removeItem("gw.access");
      sessionStorage.removeItem("gw.refresh");
      const r = await fetch(`/api/v1/tickets/${id}/acknowledge`, { method: "POST",
        headers: { Authorization: "Bearer " + access, "Content-Type": "application/json" }, body: "{}" });
      if (!r.ok) throw new Error(`acknowledge: ${r.status}`);
    }""", tk.ticket_id)
    page.wait_for_selector("main[data-page='login']", timeout=15_000)   # the reload's 401 ended the session
    ctx.close()
    assert not errors, errors


def test_a_refresh_the_server_fails_tells_the_user(server: dict, browser: Any) -> None:
    """A reload the user asked for (the duty queue's refresh button) that the server answers with an error shows that
    error, and the queue stays as it was; nothing escapes as a page error."""
    base = server["url"]
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    _login(page, base, "worker_qh1", "worker123")
    page.wait_for_selector("main[data-page='queue']")
    before = page.inner_text(".queue")
    page.route("**/api/v1/queue*", lambda route: route.fulfill(status=503, content_type="application/json",
                                                               body=json.dumps({"detail": "duty store unavailable"})))
    page.click(".queue-page h2 button")
    page.wait_for_selector("#toast.show.bad")
    assert page.inner_text("#toast") == "duty store unavailable"
    assert page.inner_text(".queue") == before
    ctx.close()
    assert not errors, errors


FRAME_HASH = """(sel) => {
  // a cheap fingerprint of what each tile's <img> shows now, drawn through a canvas (same origin, so readable)
  return [...document.querySelectorAll(sel)].map((img) => {
    if (!img.naturalWidth) return null;
    const c = document.createElement('canvas'); c.width = 32; c.height = 18;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0, 32, 18);
    const d = g.getImageData(0, 0, 32, 18).data; let hsh = 0;
    for (let i = 0; i < d.length; i += 4) hsh = (hsh * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0;
    return hsh;
  });
}"""


def test_video_wall_plays_four_live_tiles_and_says_why_one_is_dark(server: dict, browser: Any) -> None:
    base = server["url"]
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    _login(page, base, "operator", "operator123")
    page.goto(f"{base}/#/videowall")
    page.wait_for_selector("#vwall")
    page.click(".layouts button[data-layout='9']")
    assert page.locator("#vwall .vtile").count() == 9 and page.locator("#vwall .vtile[data-camera]").count() == 5
    # the dark camera says why in its own tile (from its health), and the four others play
    why = page.wait_for_selector(".vtile[data-camera='cam-office'][data-failed='1'] .why", timeout=30_000)
    assert "无法打开" in why.inner_text()
    live = ",".join(f".vtile[data-camera='{c}'] img.tile-img" for c in LIVE_CAMERAS)
    page.wait_for_function(f"() => [...document.querySelectorAll(\"{live}\")].every((i) => i.naturalWidth > 0)", timeout=30_000)
    first = page.evaluate(FRAME_HASH, live)
    # every one of the four tiles shows a new picture within a few seconds: frames are being decoded
    page.wait_for_function(f"(first) => ({FRAME_HASH})(\"{live}\").every((h, i) => h !== null && h !== first[i])",
                           arg=first, timeout=20_000)
    assert page.locator(".vtile[data-camera='cam-office'][data-failed='1']").count() == 1
    _fonts_ready(page)
    _shot(page, "videowall")
    # groups: by grid gives the plaza grid's single camera
    page.select_option("#wall-group", "grid:330199001001001")
    assert page.locator("#vwall .vtile[data-camera]").count() == 1
    page.select_option("#wall-group", "all")
    page.click(".layouts button[data-layout='4']")
    assert page.locator("#vwall .vtile[data-camera]").count() == 4
    # an alert from a camera flashes its tile
    server["runtime"].intake.file(_camera_anomaly(server["runtime"], "cam-crossing"))
    page.wait_for_selector(".vtile[data-camera='cam-crossing'].flash", timeout=15_000)
    assert page.locator(".vtile[data-alerts]").count() == 1      # the cameras' motion is activity: no other tile flashed
    # WebRTC in the tiles of a 4-tile layout: all four videos decode and advance
    page.check("#wall-webrtc")
    page.wait_for_function("() => { const v = [...document.querySelectorAll('#vwall .vtile video')];"
                           " return v.length === 4 && v.every((x) => x.videoWidth > 0); }", timeout=60_000)
    t0s = page.eval_on_selector_all("#vwall .vtile video", "vs => vs.map((v) => v.currentTime)")
    page.wait_for_function("(t0) => [...document.querySelectorAll('#vwall .vtile video')].every((v, i) => v.currentTime > t0[i] + 1)",
                           arg=t0s, timeout=30_000)
    page.uncheck("#wall-webrtc")
    page.wait_for_function("() => document.querySelectorAll('#vwall .vtile video').length === 0")
    # a click enlarges the tile into the live view with the overlay (WebRTC, frames advancing)
    page.click(".vtile[data-camera='cam-plaza']")
    page.wait_for_function("() => { const v = document.querySelector('#vzoom video'); return v && v.videoWidth > 0; }", timeout=45_000)
    t0 = page.evaluate("document.querySelector('#vzoom video').currentTime")
    page.wait_for_function(f"() => document.querySelector('#vzoom video').currentTime > {t0} + 1.0", timeout=20_000)
    page.click("#zoom-close")
    assert page.locator("#vzoom").count() == 0
    assert not errors, errors
    ctx.close()


def _camera_anomaly(rt: Any, camera_id: str) -> Any:
    from gw_support import camera_anomaly

    cam = next(c for c in rt.deployment.cameras if c.id == camera_id)
    return camera_anomaly(rt, where=cam.pose.position, source_id=camera_id, kind="crowd")


def _signed_press(base: str, device: str, secret: str) -> dict:
    import uuid

    import httpx

    from ingest.devices import signed_headers

    body = json.dumps({"device": device, "press_id": f"p-{uuid.uuid4().hex[:8]}", "kind": "press", "at": time.time()}).encode()
    r = httpx.post(f"{base}/api/v1/alarms/press", content=body, headers=signed_headers(device, secret, body), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_alarm_popup_on_a_signed_press_and_its_acknowledgement(server: dict, browser: Any) -> None:
    base, rt = server["url"], server["runtime"]
    errors: list[str] = []
    consoles = {}
    for user, password, home in (("operator", "operator123", "wall"), ("operator_my", "operator123", "wall"),
                                 ("worker_qh1", "worker123", "queue")):
        ctx, page = _page(browser, errors)
        _login(page, base, user, password)
        page.wait_for_selector(f"main[data-page='{home}']")
        page.wait_for_selector("#live-state.dot.on")   # the live socket said hello: from now on nothing is missed
        consoles[user] = (ctx, page)
    ack = _signed_press(base, "stb-0001", "demo-stb-0001-secret")     # a household of 清河北社区
    op = consoles["operator"][1]
    pop = op.wait_for_selector(f"dialog.alarm-pop[data-number='{ack['case']}']", timeout=15_000)
    assert "清河北社区 3幢1单元101" in pop.inner_text()                 # the household, from the device registry
    op.wait_for_function("() => (window.gwAlarmBeeps || 0) >= 2", timeout=10_000)   # the sound repeats until acknowledged
    op.wait_for_selector("dialog.alarm-pop .leaflet-box[data-loaded]")
    assert op.locator("dialog.alarm-pop .device-mark[data-id='stb-0001']").count() == 1   # the household on the map
    op.wait_for_function("() => { const i = [...document.querySelectorAll('dialog.alarm-pop .snaps img')];"
                         " return i.length >= 2 && i.slice(0, 2).every((x) => x.naturalWidth > 0); }", timeout=20_000)
    nearest = op.get_attribute("dialog.alarm-pop .snaps figure", "data-camera")
    assert nearest == "cam-plaza"                                        # 10 m away, the nearest camera comes first
    assert op.get_attribute("dialog.alarm-pop .snaps figure a.near-live", "href") == "#/live/cam-plaza"
    _fonts_ready(op)
    _shot(op, "alarm_popup")
    op.click("#alarm-ack")
    op.wait_for_selector("dialog.alarm-pop", state="detached", timeout=10_000)
    ticket = rt.cases.get_ticket(ack["case"])
    notes = [h for h in ticket["history"] if h["action"] == "comment"]
    assert len(notes) == 1 and notes[0]["actor"] == "operator" and "接警确认" in notes[0]["note"]
    # the other street's operator and the grid's own worker never got a pop-up (one has no such grid, one no event wall)
    for user in ("operator_my", "worker_qh1"):
        page = consoles[user][1]
        assert page.locator("dialog.alarm-pop").count() == 0, user
        assert page.evaluate("window.gwAlarmBeeps || 0") == 0, user
    # the worker's socket did carry the ticket (their grid): the pop-up was held back by role, not by luck
    consoles["worker_qh1"][1].wait_for_function("() => (window.gwLiveCount || 0) > 0", timeout=10_000)
    for ctx, _ in consoles.values():
        ctx.close()
    assert not errors, errors


def test_analysis_page_shows_the_seeded_warning_and_files_its_supervision(server: dict, browser: Any) -> None:
    from test_analysis_api import PLAZA_GRID, seed_surge

    base, rt = server["url"], server["runtime"]
    seed_surge(rt)
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    _login(page, base, "supervisor", "supervisor123")
    page.goto(f"{base}/#/analysis")
    page.wait_for_selector("main[data-page='analysis']")
    row = page.wait_for_selector(f"table.warnings tr.warning[data-grid='{PLAZA_GRID}'][data-category='0201']")
    assert row.inner_text().split("\t")[2:4] == ["6", "2.0"]                       # count and its own baseline
    assert page.locator("table.warnings tr.warning").count() == 1
    # parking, both grids: 6 + 2 in the last 7 days, 2 + 2 in the 7 before
    assert page.locator("table.wow-cat tr[data-key='0201']").inner_text().split("\t")[1:3] == ["8", "4"]
    assert "文一路 3 号 北门" in page.inner_text("table.repeats")
    page.wait_for_selector("#an-map canvas.leaflet-heatmap-layer")                 # the heat layer is drawn
    assert page.locator("#an-wow canvas").count() == 1
    _fonts_ready(page)
    _shot(page, "analysis")
    page.click("#an-run")
    filed = page.wait_for_selector("#an-filed p.filed")
    ticket_id = int(filed.get_attribute("data-id"))
    ticket = rt.cases.get_ticket(ticket_id)
    assert ticket["kind"] == "early_warning" and ticket["supervised"] and ticket["grid_code"] == PLAZA_GRID
    filed.query_selector("a").click()
    page.wait_for_selector("main[data-page='ticket'] table.history")
    assert "督办" in page.inner_text("table.history")
    assert not errors, errors
    ctx.close()


REVIEW_BURST = 20


def test_review_filters_timeline_and_keyboard_burst(server: dict, browser: Any) -> None:
    base, rt = server["url"], server["runtime"]
    refs = [rt.intake.file(_camera_anomaly(rt, "cam-garages")) for _ in range(REVIEW_BURST)]   # a burst of separate alerts
    assert len({r.ticket_id for r in refs}) == REVIEW_BURST
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    _login(page, base, "operator", "operator123")
    page.goto(f"{base}/#/review")
    page.wait_for_selector("#rv-list[data-loaded]")
    # the real clips' motion is activity (no ticket): wait until some is recorded, then filter on it
    page.wait_for_function("""async () => { const r = await fetch('/api/v1/review?tier=activity&kind=motion&limit=1',
        { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('gw.access') } }); return (await r.json()).items.length > 0; }""",
                           timeout=60_000, polling=1000)
    page.select_option("#rv-tier", "activity")
    page.wait_for_function("() => { const i = document.querySelectorAll('#rv-list .rv-item'); return i.length > 0 && [...i].every((x) => x.dataset.tier === 'activity'); }")
    # filters: this camera's alerts still waiting for review — exactly the burst
    page.select_option("#rv-tier", "alert")
    page.select_option("#rv-camera", "cam-garages")
    page.select_option("#rv-status", "reported")
    page.wait_for_function(f"() => document.querySelectorAll('#rv-list .rv-item').length === {REVIEW_BURST}")
    shown = page.eval_on_selector_all("#rv-list .rv-item", "els => els.map((e) => e.dataset.id)")
    assert shown == [f"alert:{r.ticket_id}" for r in reversed(refs)]          # newest first
    # the timeline of the selected item's camera scrubs through its evidence
    page.wait_for_function("() => document.querySelectorAll('#rv-ticks .tick').length >= %d" % REVIEW_BURST)
    page.wait_for_function("() => { const i = document.getElementById('rv-snap'); return i && i.naturalWidth > 0; }")
    first = page.get_attribute("#rv-snap", "data-item")
    page.eval_on_selector("#rv-scrub", "(s) => { s.value = '0'; s.dispatchEvent(new Event('input')); }")
    page.wait_for_function(f"() => {{ const i = document.getElementById('rv-snap'); return i.dataset.item !== '{first}' && i.naturalWidth > 0; }}")
    _fonts_ready(page)
    _shot(page, "review")
    # keyboard only: confirm / dismiss alternately through the burst, and measure the rate
    page.evaluate("document.activeElement && document.activeElement.blur()")
    started = time.monotonic()
    for i in range(REVIEW_BURST):
        page.keyboard.press("c" if i % 2 == 0 else "d")
        page.wait_for_function(f"() => document.getElementById('rv-handled').dataset.count === '{i + 1}'", timeout=15_000)
    elapsed = time.monotonic() - started
    rate = REVIEW_BURST / elapsed * 60
    print(f"review: {REVIEW_BURST} alerts handled by keyboard in {elapsed:.1f} s = {rate:.0f} per minute")
    statuses = [rt.cases.get_ticket(r.ticket_id)["status"] for r in reversed(refs)]
    assert statuses == ["dispatched", "false_alarm"] * (REVIEW_BURST // 2)
    assert rate >= 30, f"only {rate:.0f} events per minute"
    assert not errors, errors
    ctx.close()


def test_big_screen_counts_live_and_survives_a_gateway_restart(server: dict, browser: Any) -> None:
    """Runs last in this module: it stops the gateway and starts a new one on the same port."""
    base, rt, srv = server["url"], server["runtime"], server["server"]
    errors: list[str] = []
    ctx, page = _page(browser, errors, viewport={"width": 1920, "height": 1080})
    _login(page, base, "operator", "operator123")
    page.goto(f"{base}/#/bigscreen")
    page.wait_for_selector("#bigscreen[data-conn='live']")
    opened = {t["id"] for t in rt.cases.list_tickets(open_only=True, limit=500).items}
    page.wait_for_function(f"() => document.querySelector('#bs-open').textContent === '{len(opened)}'", timeout=15_000)
    assert page.locator("#bs-status canvas").count() == 1 and page.locator("#bs-trend canvas").count() == 1   # ECharts drew
    assert page.locator("header#top").is_hidden()                            # the wall display has no console chrome
    # a new case raises the count live
    before = int(page.inner_text("#bs-open"))
    file_ticket(rt, where=GeoPoint(lon=120.1066, lat=30.2769))
    page.wait_for_function(f"() => Number(document.querySelector('#bs-open').textContent) > {before}", timeout=15_000)
    _fonts_ready(page)
    _shot(page, "bigscreen")
    # the gateway goes away: the screen says so and keeps its last picture
    srv.stop()
    page.wait_for_selector("#bigscreen[data-conn='down']", timeout=30_000)
    assert page.inner_text("#bs-open") != ""
    # a case filed while the gateway is down, then the gateway is back: the screen reconnects by itself
    during = file_ticket(rt, where=GeoPoint(lon=120.1064, lat=30.2767))
    srv.start()
    page.wait_for_selector("#bigscreen[data-conn='live']", timeout=30_000)
    now_open = len({t["id"] for t in rt.cases.list_tickets(open_only=True, limit=500).items})
    page.wait_for_function(f"() => Number(document.querySelector('#bs-open').textContent) >= {now_open}", timeout=20_000)
    assert str(during.ticket_id) in page.evaluate("() => { const b = document.querySelector('#bs-map'); return b.dataset.loaded && window.gwBigscreenMap ? gwBigscreenMap.ids('tickets') : []; }")
    # and live events flow again over the re-opened socket
    after = int(page.inner_text("#bs-open"))
    file_ticket(rt, where=GeoPoint(lon=120.1062, lat=30.2765))
    page.wait_for_function(f"() => Number(document.querySelector('#bs-open').textContent) > {after}", timeout=15_000)
    page.wait_for_selector("#live-state.dot.on", state="attached")
    assert not errors, errors
    ctx.close()
