"""A real Chromium files a resident report with a photo and a map pick, follows it to closure and rates it.

The server is the minimal app of conftest (real auth, tickets and reports routers over a real store, Redis,
intake and notifier) served by uvicorn; the worker and dispatcher drive the case through the tickets API.
"""
from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import httpx
import pytest

from tests.channels.conftest import jpeg_bytes, make_app, outbox, wait_for

CHROMIUM = Path("/usr/bin/chromium")
PHONE = "13566667777"


@pytest.fixture
def server(env):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(make_app(env), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, timeout=20, what="uvicorn start")
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.timeout(150)
def test_resident_reports_in_browser_follows_to_closure_and_rates(server, env, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    photo = tmp_path / "lamp.jpg"
    photo.write_bytes(jpeg_bytes(800, 600, (30, 30, 60)))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 420, "height": 900})
            page.goto(f"{server}/report/")
            page.fill("#phone", PHONE)
            page.click("#send-code")
            msg = wait_for(lambda: [m for m in outbox(env, PHONE) if m["purpose"] == "otp"], what="otp sms")[-1]
            page.fill("#code", re.search(r"验证码为(\d+)", msg["text"]).group(1))
            page.click("#do-login")
            page.wait_for_selector("[data-testid=pickmap] path", timeout=15000)
            page.fill("#text", "明月南社区学院路这段路灯全都不亮了，晚上一片漆黑")
            page.set_input_files("#photos", str(photo))
            # Click the map where 明月南社区第4网格 (lon 120.13–120.14, lat 30.25–30.2575) lies.
            x, y = page.evaluate("""() => { const [px, py] = state.map.px(120.1362, 30.2541);
                const b = document.querySelector('[data-testid=pickmap]').getBoundingClientRect();
                return [b.left + px * b.width / state.map.W, b.top + py * b.height / state.map.H]; }""")
            page.mouse.click(x, y)
            assert "明月南社区第4网格" in page.inner_text("#picked")
            page.click("#submit")
            page.wait_for_selector("[data-testid=case-number]", timeout=20000)
            number = page.inner_text("[data-testid=case-number]").strip()
            assert "明月南社区第4网格" in page.inner_text("[data-testid=grid-name]")
            ticket = env.cases.get_ticket(number)
            assert ticket["grid_code"] == "330199002002004" and ticket["category"] == "0504"
            assert [e["kind"] for e in ticket["evidence"]] == ["photo"]

            # The worker of that grid and the dispatcher work the case through the API.
            with httpx.Client(base_url=server, timeout=10) as api:
                def token(user, pw_):
                    r = api.post("/api/v1/auth/token", data={"username": user, "password": pw_})
                    return {"Authorization": f"Bearer {r.json()['access_token']}"}
                worker, disp = token("worker_my4", "worker123"), token("dispatcher", "dispatcher123")
                for action, who, note in (("sign", worker, ""), ("start", worker, ""), ("feedback", worker, "已更换3盏路灯"),
                                          ("verify", disp, ""), ("close", disp, "")):
                    r = api.post(f"/api/v1/tickets/{ticket['id']}/actions/{action}", json={"note": note}, headers=who)
                    assert r.status_code == 200, (action, r.text)
            wait_for(lambda: [m for m in outbox(env, PHONE) if m["purpose"] == "closed"], what="closed sms")

            page.click("#refresh")
            page.wait_for_selector(f"[data-case='{number}'] >> text=已结案", timeout=10000)
            page.click(f"[data-case='{number}'] button")
            page.wait_for_selector("#rate-box:not(.hidden)", timeout=10000)
            assert "已更换3盏路灯" in page.inner_text("#detail-body")
            page.click("#stars button[data-score='4']")
            page.click("#rate")
            page.wait_for_selector("[data-testid=rated]", timeout=10000)
            assert env.cases.get_ticket(ticket["id"])["status"] == "rated"
        finally:
            browser.close()
