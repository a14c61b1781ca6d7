"""The console in a real browser: headless Chromium from Debian's packages, driven by Playwright (no browser
download), against the app served by uvicorn on SQLite and PostgreSQL, with every request to anywhere
but the app refused. A dispatcher signs in with the demo password, sees a new case appear on the board
live, and dispatches it by the department's name through the case page's form.

Screenshots of each page are written to ``test-artifacts/console/``.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from gridflow.api.app import create_app
from gridflow.demo.seed import DEMO_PASSWORD
from tests.api.helpers import GRID

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


@pytest.fixture
def server(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(app, start_runner=False), host="127.0.0.1", port=port,
                            log_level="warning", timeout_graceful_shutdown=1)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_a_dispatcher_signs_in_sees_a_new_case_live_and_dispatches_it_by_name(server, db_url):
    from playwright.sync_api import expect, sync_playwright

    kind = "sqlite" if db_url.startswith("sqlite") else "postgres"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(locale="zh-CN")

            def only_the_app(route) -> None:
                if route.request.url.startswith(server):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_app)
            page.goto(f"{server}/")
            expect(page).to_have_url(f"{server}/signin")
            page.screenshot(path=str(ARTIFACTS / f"signin-{kind}.png"), full_page=True)
            page.fill("input[name=user]", "cd-1")
            page.fill("input[name=password]", DEMO_PASSWORD)
            page.click("form:has(input[name=user]) button[type=submit]")
            expect(page.locator("h1")).to_contain_text("待办案件")
            expect(page.locator("#live-status")).to_be_visible(timeout=10_000)  # the stream is open

            created = httpx.post(f"{server}/api/v1/cases", headers={"X-API-Key": "demo-grid-worker"},
                                 json={"category": "C0501", "title": "楼道漏水", "unit": GRID}).json()
            number = created["number"]
            row = page.locator(f"#worklist a:text('{number}')")
            expect(row).to_be_visible(timeout=10_000)  # without a reload
            page.screenshot(path=str(ARTIFACTS / f"board-{kind}.png"), full_page=True)

            row.click()
            expect(page.locator("h1")).to_contain_text(number)
            expect(page.locator("#chain")).to_contain_text("记录链完整")
            page.click("summary:text-is('派遣')")
            form = page.locator(f"form[action='/cases/{number}/actions/dispatch']")
            form.locator("select[name=department]").select_option(label="区住建局")
            form.locator("button[type=submit]").click()
            expect(page.locator(".notice")).to_contain_text("已办理: 派遣")
            expect(page.locator(".timeline")).to_contain_text("办理: 派遣")
            page.screenshot(path=str(ARTIFACTS / f"case-{kind}.png"), full_page=True)
        finally:
            browser.close()
    held = httpx.get(f"{server}/api/v1/cases/{number}", headers={"X-API-Key": "demo-housing"}).json()
    assert held["state"] == "dispatched" and held["holder_unit"] == "dept-housing"
    assert outside == [], f"the console asked for {outside}"
