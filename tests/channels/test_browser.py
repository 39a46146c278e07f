"""A real Chromium files a resident report with a photo and a map pick, follows it to closure and rates it;
a dispatcher on the hotline form and the report review sees the top 3 suggestions with their reasons and
corrects with one click.

The server is the minimal app of conftest (real auth, tickets and reports routers over a real store, Redis,
intake and notifier) served by uvicorn; the worker and dispatcher drive the case through the tickets API.
"""
from __future__ import annotations

import re
import socket
import unicodedata
import threading
from pathlib import Path

import httpx
import pytest

from alerts.channels.values import Staff
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


def _staff_login(page, server: str, path: str) -> None:
    page.goto(f"{server}/report/{path}")
    page.fill("#staff-user", "dispatcher")
    page.fill("#staff-pass", "dispatcher123")
    page.click("#staff-do-login")


def _top3(page, root: str = "#suggestion") -> list[dict]:
    page.wait_for_selector(f"{root} [data-testid=top3] li >> nth=2", timeout=15000)
    return page.eval_on_selector_all(f"{root} [data-testid=suggestion]", """els => els.map(e => ({
        code: e.dataset.code, confidence: e.querySelector('[data-testid=confidence]').textContent.trim(),
        reasons: e.querySelector('[data-testid=reasons]').textContent }))""")


@pytest.mark.timeout(150)
def test_hotline_shows_top_three_with_reasons_and_one_click_correction_feeds_the_model(server, env):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 800, "height": 1200})
            _staff_login(page, server, "hotline.html")
            page.wait_for_selector("#form:not(.hidden) #category option", state="attached", timeout=15000)

            # A gas leak in everyday words (no word of the category file): critical, 119 first, reasons shown.
            page.fill("#text", "一进单元门就一股臭鸡蛋味，越往楼上越冲，头都有点晕")
            page.click("#suggest")
            top = _top3(page)
            assert len(top) == 3 and top[0]["code"] == "0304", top
            assert all(re.fullmatch(r"\d{1,3}%", t["confidence"]) for t in top), top
            assert "臭鸡蛋" in top[0]["reasons"], top
            assert "119" in page.inner_text("[data-testid=danger]")
            assert page.input_value("#urgency") == "critical" and page.input_value("#category") == "0304"

            # An everyday complaint: the dispatcher picks the second suggestion with one click and files it.
            text = "小区门卫室的饮水机天天半夜嘀嘀叫，值班大爷说吵得睡不着"
            page.fill("#text", text)
            page.click("#suggest")
            page.wait_for_function("() => !document.querySelector('[data-testid=danger]')", timeout=15000)
            top = _top3(page)
            first, second = top[0]["code"], top[1]["code"]
            page.click(f"#suggestion button.pick[data-code='{second}']")
            assert page.input_value("#category") == second
            page.fill("#phone", "13911112222")
            page.fill("#address", "学院路8号")
            page.click("#submit")
            page.wait_for_selector("#result .ok", timeout=20000)
            # The correction fed the model at once: the same words now come back as the dispatcher's choice.
            again = env.channels.suggester.classify(text)
            assert again.category == second and first != second

            # The report review shows the same top 3 with reasons; one click re-files it and is learnt too.
            page.goto(f"{server}/report/review.html")   # same tab: the staff token of this session carries over
            report = env.channels.staff.list(Staff("dispatcher", "dispatcher")).items[0]
            assert report.text == unicodedata.normalize("NFKC", text)   # stored as screened (full-width → ASCII)
            root = f"[data-report='{report.id}']"
            rtop = _top3(page, root)
            assert rtop[0]["code"] == second and len(rtop) == 3
            third = rtop[2]["code"]
            page.click(f"{root} button.pick[data-code='{third}']")
            page.wait_for_selector(f"{root} [data-testid=current] >> text=已纠正", timeout=15000)
            assert env.channels.suggester.classify(text).category == third
        finally:
            browser.close()
