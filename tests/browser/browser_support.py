"""Helpers of the browser tests: Debian's Chromium, a runtime served by uvicorn, logging in."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import REDIS_URL, AppServer, drop_keys  # noqa: E402
from tests.support import free_port  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


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


def login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/#/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_selector("main[data-page]:not([data-page='login'])")  # the role's home page has rendered
