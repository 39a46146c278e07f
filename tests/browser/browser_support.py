"""Helpers of the browser tests: Debian's Chromium, a runtime served by uvicorn, logging in."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import REDIS_URL, AppServer, drop_keys  # noqa: E402
from tests.support import free_port  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
# the live views: WebRTC between loopback peers (no mDNS host candidates, no QUIC) and video that autoplays
WEBRTC_ARGS = [*ARGS, "--disable-quic", "--disable-features=WebRtcHideLocalIpsWithMdns",
               "--autoplay-policy=no-user-gesture-required"]


@contextmanager
def served(runtime: Any) -> Iterator[str]:
    """The runtime's app on a free port (its base URL); afterwards the server and runtime stop and its keys go."""
    import redis

    app = AppServer(runtime, free_port())
    app.start()
    try:
        yield f"http://127.0.0.1:{app.port}"
    finally:
        app.stop()
        runtime.stop()
        client = redis.Redis.from_url(REDIS_URL)
        drop_keys(client, runtime.deployment.services.stream_prefix)
        client.close()


def browser_deployment(tmp_path_factory: Any, name: str) -> Any:
    """The demo deployment for a module's server (``gw_support.make_deployment``) in a temp dir of its own,
    the model cache there too and ultralytics offline (nothing is downloaded in a test)."""
    import os

    from gw_support import make_deployment

    tmp = tmp_path_factory.mktemp(name)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp / "yolo"))
    return make_deployment(tmp)


def login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/#/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_selector("main[data-page]:not([data-page='login'])")  # the role's home page has rendered


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Debian Chromium for a module's tests (each opens its own context), with ``WEBRTC_ARGS``.
    A module uses it by importing it: ``from tests.browser.browser_support import browser  # noqa: F401``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=WEBRTC_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def new_page(browser: Any, errors: list[str], **kw: Any) -> tuple[Any, Any]:
    """A fresh context (1366x820 unless ``viewport`` says otherwise, zh-CN) and its page; page errors go to ``errors``."""
    ctx = browser.new_context(viewport=kw.pop("viewport", {"width": 1366, "height": 820}), locale="zh-CN", **kw)
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(e.stack or str(e)))   # the stack says which call threw
    return ctx, page
