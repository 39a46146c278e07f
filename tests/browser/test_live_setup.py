"""The live view's set-up in a real Chromium when the user leaves mid-negotiation: logging out (or going to another
page) while the WebRTC offer is still being made sends nothing more — no offer, no media token, no MJPEG, and never
a request without a token — and leaves no page error or unhandled rejection; a camera that cannot be shown ends as
a readable line in the tile.

The browser's own ``RTCPeerConnection`` is held at one step (``createOffer`` before it runs, ``setLocalDescription``
after it ran) until the test has left the page, so the moment is the same on every run however loaded the machine is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.browser.browser_support import CHROMIUM, browser, login, new_page, served  # noqa: F401  (browser: a fixture)
from tests.support import wait_for

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/bin/chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api")

# Holds one RTCPeerConnection step until window.__releaseLive() and records unhandled rejections.
HOLD = """
(() => {
  window.__rejections = [];
  window.addEventListener("unhandledrejection", (e) => window.__rejections.push(String(e.reason && e.reason.message || e.reason)));
  let release;
  const gate = new Promise((r) => { release = r; });
  window.__releaseLive = () => release();
  const proto = RTCPeerConnection.prototype;
  const step = "%s";
  const orig = proto[step];
  proto[step] = async function (...args) {
    if (step === "createOffer") { window.__liveHeld = step; await gate; return orig.apply(this, args); }
    const out = await orig.apply(this, args);
    window.__liveHeld = step; await gate; return out;
  };
})();
"""
LIVE_PATHS = ("/webrtc", "/mjpeg", "/auth/media-token")
PUBLIC = ("/api/v1/settings", "/api/v1/auth/token")


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Iterator[str]:
    from gw_support import build_test_runtime, make_deployment

    runtime = build_test_runtime(make_deployment(Path(tmp_path_factory.mktemp("live"))))  # cameras not started
    with served(runtime) as url:
        yield url


class Traffic:
    """The API requests a page makes after ``mark()``: those without a token, those of the live view, and 401s."""

    def __init__(self, page: Any) -> None:
        self.marked = False
        self.tokenless: list[str] = []
        self.live: list[str] = []
        self.unauthorised: list[str] = []
        page.on("request", self._request)
        page.on("response", lambda r: self.marked and r.status == 401 and self.unauthorised.append(r.url))

    def mark(self) -> None:
        self.marked = True

    def _request(self, req: Any) -> None:
        if not self.marked or "/api/v1/" not in req.url:
            return
        path = req.url.split("?")[0]
        if "authorization" not in req.headers and "mt=" not in req.url and not path.endswith(PUBLIC):
            self.tokenless.append(f"{req.method} {path}")
        if any(p in path for p in LIVE_PATHS):
            self.live.append(f"{req.method} {path}")

    def bad(self) -> bool:
        return bool(self.tokenless or self.live or self.unauthorised)


@pytest.mark.parametrize("step", ["createOffer", "setLocalDescription"])
@pytest.mark.parametrize("leave", ["logout", "navigate"])
def test_leaving_the_live_view_mid_setup_sends_nothing_more(server: str, browser: Any, step: str, leave: str) -> None:
    errors: list[str] = []
    context, page = new_page(browser, errors)
    try:
        page.add_init_script(HOLD % step)
        login(page, server, "operator", "operator123")
        traffic = Traffic(page)
        page.goto(f"{server}/#/live/cam-plaza")
        page.wait_for_function("() => window.__liveHeld", timeout=20_000)  # the set-up is negotiating
        traffic.mark()
        if leave == "logout":
            page.click("#logout")
            page.wait_for_selector("main[data-page='login']")
        else:
            page.evaluate("location.hash = '#/wall'")
            page.wait_for_selector("main[data-page='wall']")
        page.evaluate("window.__releaseLive()")
        # the held step returns; the set-up either stops (its outcome is recorded) or goes on and misbehaves
        wait_for(lambda: traffic.bad() or bool(errors) or page.evaluate("window.gwLiveSetup && window.gwLiveSetup.outcome"),
                 20, what="the live set-up to settle")
        assert traffic.tokenless == [], "requests without a token after leaving"
        assert traffic.live == [], "the live view kept negotiating after it was left"
        assert traffic.unauthorised == []
        assert errors == [] and page.evaluate("window.__rejections") == []
        assert page.evaluate("window.gwLiveSetup.outcome") == "cancelled"
    finally:
        context.close()


def test_a_camera_that_cannot_be_shown_ends_as_a_line_in_the_tile(server: str, browser: Any) -> None:
    errors: list[str] = []
    context, page = new_page(browser, errors)
    try:
        page.add_init_script("window.__rejections = []; window.addEventListener('unhandledrejection', "
                             "(e) => window.__rejections.push(String(e.reason)));")
        login(page, server, "operator", "operator123")
        page.goto(f"{server}/#/live/no-such-camera")
        # WebRTC is refused (no such camera), the MJPEG fallback is refused too: both say so in the tile
        page.wait_for_function("() => { const e = document.getElementById('live-error');"
                               " return e && !e.hidden && e.textContent.startsWith(t('live_mjpeg_failed') + ': '); }",
                               timeout=20_000)
        text = page.text_content("#live-error")
        assert "undefined" not in text and len(text) > len(page.evaluate("t('live_mjpeg_failed')")) + 2
        assert page.evaluate("window.gwLiveSetup.outcome") == "mjpeg"  # the fallback was tried
        assert errors == [] and page.evaluate("window.__rejections") == []
        assert page.url.endswith("#/live/no-such-camera")  # still logged in, still on the page
    finally:
        context.close()
