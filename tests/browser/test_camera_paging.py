"""The camera page in a real Chromium with 250 synthetic cameras (not started): it shows a page of 50, steps to the
next page and back, and finds one camera by a search — what an integrator does with a city's cameras."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from benchmarks.fleet import synthetic_cameras
from tests.browser.browser_support import ARGS, CHROMIUM, login, served

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/bin/chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    from gw_support import build_test_runtime, make_deployment

    dep = make_deployment(tmp_path)
    dep.cameras = []
    runtime = build_test_runtime(dep)
    runtime.deployment.cameras.extend(synthetic_cameras(runtime.grids, 250))
    with served(runtime) as url:
        yield url


def _ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("table.cam-list tbody tr", "rows => rows.map(r => r.dataset.id)")


def test_the_camera_page_pages_and_searches(server: str) -> None:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 820})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            login(page, server, "admin", "admin123")
            page.goto(f"{server}/#/cameras")
            page.wait_for_selector("tr[data-id='syn-00000']")
            assert _ids(page) == [f"syn-{i:05d}" for i in range(50)]
            assert page.inner_text("#cam-count") == "1–50 / 250" and page.is_disabled("#cam-prev")
            page.click("#cam-next")
            page.wait_for_selector("tr[data-id='syn-00050']")
            assert _ids(page) == [f"syn-{i:05d}" for i in range(50, 100)]
            assert page.inner_text("#cam-count") == "51–100 / 250"
            page.click("#cam-prev")
            page.wait_for_selector("tr[data-id='syn-00000']")
            page.fill("#cam-search", "合成摄像机 177 号")
            page.press("#cam-search", "Enter")
            page.wait_for_selector("tr[data-id='syn-00177']")
            assert _ids(page) == ["syn-00177"] and page.inner_text("#cam-count") == "1–1 / 1"
            assert page.is_disabled("#cam-next")
            assert not errors, errors
        finally:
            browser.close()
