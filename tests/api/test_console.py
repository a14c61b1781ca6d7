"""The console (server-rendered pages) on real SQLite and PostgreSQL: signing in and out, CSRF, the dispatch
board, the case page with its forms, timeline and deadlines, scoping and masking as the API does them,
Chinese by default, Asia/Shanghai times, and nothing loaded from outside the app."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from gridflow.api.app import create_app
from gridflow.demo.seed import DEMO_PASSWORD
from tests.api.helpers import Api, tamper_event

PHONE = "13812345678"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def browser(api: Api) -> TestClient:
    """A second browser on the same app, with cookies of its own."""
    return TestClient(api.client.app)


def sign_in(client: TestClient, *, key: str | None = None, user: str | None = None,
            password: str = DEMO_PASSWORD):
    token = _csrf(client.get("/signin").text)
    form = {"csrf": token, "api_key": key} if key else {"csrf": token, "user": user, "password": password}
    return client.post("/signin", data=form, follow_redirects=False)


def signed_in(api: Api, key: str) -> TestClient:
    client = browser(api)
    assert sign_in(client, key=key).status_code == 303
    return client


def act(client: TestClient, number: str, action: str, **fields):
    page = client.get(f"/cases/{number}")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    form = {"csrf": _csrf(page.text), "version": version.group(1) if version else "", **fields}
    return client.post(f"/cases/{number}/actions/{action}", data=form, follow_redirects=False)


@pytest.fixture
def case(api) -> str:
    return api.report(reporter={"name": "李明", "phone": PHONE}, title="楼道漏水")["number"]


# --- signing in and out --------------------------------------------------------------------------

def test_a_dispatcher_signs_in_with_the_demo_password_and_sees_its_worklist(api, case):
    client = browser(api)
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"
    r = sign_in(client, user="cd-1")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "gridflow_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http in the test; https (or the setting) adds it
    board = client.get("/")
    assert board.status_code == 200 and case in board.text and "楼道漏水" in board.text
    assert "海港社区 调度员" in board.text and 'class="light light-green"' in board.text
    assert board.headers["cache-control"] == "no-store"


def test_an_api_key_signs_in_too_but_a_residents_case_token_does_not(api, case):
    client = browser(api)
    assert sign_in(client, key="demo-community").status_code == 303
    assert case in client.get("/").text
    token = api.report("demo-resident")["resident_token"]
    refused = sign_in(browser(api), key=token)
    assert refused.status_code == 401 and "staff API key" in refused.text


def test_cookies_are_secure_over_https_or_when_the_setting_says_so(make_app, db_url):
    gf = make_app(db_url)
    over_https = TestClient(create_app(gf), base_url="https://testserver")
    assert "Secure" in sign_in(over_https, key="demo-community").headers["set-cookie"]
    always = TestClient(create_app(make_app(db_url, session_cookie_secure="always")))
    assert "Secure" in always.get("/signin").headers["set-cookie"]


def test_a_wrong_password_is_refused_and_repeated_failures_are_rate_limited(make_app, db_url):
    client = TestClient(create_app(make_app(db_url, auth_failure_limit="2/minute")))
    first = sign_in(client, user="cd-1", password="not-the-password")
    assert first.status_code == 401 and "wrong user name or password" in first.text
    assert "gridflow_session" not in first.headers.get("set-cookie", "")
    assert sign_in(client, user="nobody", password="not-the-password").status_code == 401
    limited = sign_in(client, user="cd-1")  # even the right password waits now
    assert limited.status_code == 429 and "try again in" in limited.text and limited.headers["retry-after"]


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(api, case):
    client = signed_in(api, "demo-community")
    no_token = client.post(f"/cases/{case}/actions/reject", data={"reason": "不属实"})
    wrong = client.post(f"/cases/{case}/actions/reject", data={"reason": "不属实", "csrf": "forged"})
    assert no_token.status_code == wrong.status_code == 403
    assert "text/html" in no_token.headers["content-type"] and "表单已过期" in no_token.text
    assert api.get("demo-community", f"/cases/{case}").json()["state"] == "reported"
    assert browser(api).post("/signin", data={"api_key": "demo-community"}).status_code == 403
    assert client.post("/signout", data={}).status_code == 403


def test_signing_out_ends_the_session_and_shows_nothing_of_the_previous_user(api, case):
    client = signed_in(api, "demo-community")
    assert PHONE in client.get(f"/cases/{case}").text
    old_cookie = client.cookies.get("gridflow_session")
    out = client.post("/signout", data={"csrf": _csrf(client.get("/").text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert 'gridflow_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    for path in ("/", f"/cases/{case}", "/closed"):
        assert client.get(path, follow_redirects=False).status_code == 303
    page = client.get("/signin").text
    assert PHONE not in page and "海港社区 调度员" not in page and case not in page
    replayed = browser(api)
    replayed.cookies.set("gridflow_session", old_cookie)
    assert replayed.get("/", follow_redirects=False).headers["location"] == "/signin"
    housing = signed_in(api, "demo-housing")
    assert case not in housing.get("/").text and PHONE not in housing.get("/").text


def test_a_session_ends_after_the_idle_timeout(api, clock, case):
    client = signed_in(api, "demo-community")
    for _ in range(2):  # 40 minutes in all, never 30 without a request
        clock.advance(timedelta(minutes=20))
        assert client.get("/", follow_redirects=False).status_code == 200
    clock.advance(timedelta(minutes=31))
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


# --- scoping and masking, as the API -------------------------------------------------------------

def test_a_department_handler_cannot_open_a_case_outside_its_unit(api, case):
    api.ok("demo-community", case, "dispatch", {"department": "dept-housing"})
    urban = signed_in(api, "demo-urban")
    page = urban.get(f"/cases/{case}")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "楼道漏水" not in page.text and case not in urban.get("/").text
    assert signed_in(api, "demo-housing").get(f"/cases/{case}").status_code == 200


def test_contacts_are_masked_on_the_page_as_the_api_masks_them(api, case):
    """A supervisor has no contact rights (CONTACT_ROLES): the phone and name are masked for it, as over
    the API; the community that calls the resident back sees them."""
    page = signed_in(api, "demo-supervisor").get(f"/cases/{case}")
    assert page.status_code == 200 and PHONE not in page.text and "李明" not in page.text
    assert "138****5678" in page.text and "已脱敏" in page.text
    api_view = api.get("demo-supervisor", f"/cases/{case}").json()
    assert api_view["reporter_phone"] in page.text and api_view["reporter_name"] in page.text
    assert PHONE in signed_in(api, "demo-community").get(f"/cases/{case}").text


def test_a_department_does_not_see_the_phone_of_a_confidential_reporter(api):
    number = api.report(reporter={"name": "张伟", "phone": "13512345678"}, confidential=True)["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    page = signed_in(api, "demo-housing").get(f"/cases/{number}")
    assert page.status_code == 200 and "13512345678" not in page.text and "5678" not in page.text
    assert "张伟" not in page.text
    assert 'id="reporter-name">—' in page.text and 'id="reporter-phone">—<' in page.text


# --- the case page and its forms -----------------------------------------------------------------

def test_the_case_page_offers_the_callers_actions_with_chinese_labels_and_unit_pickers_by_name(api, case):
    page = signed_in(api, "demo-community").get(f"/cases/{case}").text
    for label in ("派遣", "上报街道", "不予受理"):
        assert f"<summary>{label}</summary>" in page
    assert '<option value="dept-housing">区住建局</option>' in page
    assert '<option value="dept-other-district">' not in page
    assert "handle_locally</summary>" not in page  # ids only in form targets, never as labels
    assert "<summary>签收</summary>" not in page  # the department's action, not the community's


def test_an_action_form_without_its_required_reason_shows_the_message(api, case):
    client = signed_in(api, "demo-community")
    r = act(client, case, "refer_to_street", reason="")
    assert r.status_code == 422 and "text/html" in r.headers["content-type"]
    assert "reason is required" in r.text and 'role="alert"' in r.text
    assert api.get("demo-community", f"/cases/{case}").json()["version"] == 1


def test_dispatching_through_the_form_hands_the_case_to_the_department(api, case):
    client = signed_in(api, "demo-community")
    r = act(client, case, "dispatch", department="dept-housing", instructions="尽快处理")
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{case}?done=dispatch"
    detail = api.get("demo-housing", f"/cases/{case}").json()
    assert detail["state"] == "dispatched" and detail["holder_unit"] == "dept-housing"
    page = client.get(r.headers["location"]).text
    assert "已办理: 派遣" in page and "办理: 派遣" in page and "cd-1 · 社区" in page
    assert "尽快处理" in page


def test_a_unit_out_of_reach_is_refused_on_the_page_as_the_api_refuses_it(api, case):
    r = act(signed_in(api, "demo-community"), case, "dispatch", department="370602002001")  # another street
    assert r.status_code == 422 and "unknown unit" in r.text


def test_the_timeline_and_deadlines_read_in_local_time(api, case):
    page = signed_in(api, "demo-community").get(f"/cases/{case}").text
    # the test clock starts at 2026-09-30 00:00 UTC: 08:00 on the dispatch centre's wall clock
    assert "2026-09-30 08:00" in page and "2026-09-30 00:00" not in page
    assert "<td>上报</td>" in page and "网格员" in page
    assert "时限说明" in page and "当前期限" in page and "工作" in page


def test_the_chain_badge_says_whether_the_history_verifies(api, case):
    client = signed_in(api, "demo-supervisor")
    assert "记录链完整" in client.get(f"/cases/{case}").text
    tamper_event(api.app.services.db, case, 1, "someone-else")
    assert "记录链已被篡改" in client.get(f"/cases/{case}").text


# --- the board -----------------------------------------------------------------------------------

def test_the_board_filters_by_light_stage_and_escalation_and_finds_by_number(api, case):
    client = signed_in(api, "demo-community")
    assert case in client.get("/", params={"light": "green"}).text
    assert case not in client.get("/", params={"light": "red"}).text
    assert case not in client.get("/", params={"escalated": "1"}).text
    assert case in client.get("/", params={"stage": "triage"}).text
    found = client.get("/", params={"q": case}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == f"/cases/{case}"
    assert client.get("/", params={"q": "GF-0000-999999"}).status_code == 404


def test_closed_cases_are_listed_apart(api, case):
    api.ok("demo-community", case, "reject", {"reason": "不属实"})
    client = signed_in(api, "demo-community")
    assert case not in client.get("/").text
    assert case in client.get("/closed").text


def test_the_live_stream_takes_the_console_session(api, case):
    client = signed_in(api, "demo-community")
    got: dict = {}
    listener = threading.Thread(target=lambda: got.update(r=client.get(
        "/api/v1/events", params={"limit": 1, "heartbeat": 0.2})), daemon=True)
    listener.start()
    deadline = time.monotonic() + 10
    while api.client.app.state.hub.subscribers < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    api.ok("demo-community", case, "reject", {"reason": "不属实"})
    listener.join(15)
    assert got["r"].status_code == 200 and case in got["r"].text
    assert browser(api).get("/api/v1/events", params={"limit": 1}).status_code == 401
    fragment = client.get("/board/worklist")
    assert fragment.status_code == 200 and "<table" in fragment.text and "<html" not in fragment.text


# --- language, time, isolation ----------------------------------------------------------------------

def test_pages_are_chinese_by_default_and_english_on_request(api, case):
    client = browser(api)
    assert "登录" in client.get("/signin").text
    english = client.get("/signin", params={"lang": "en"})
    assert "Sign in" in english.text and "登录" not in english.text.replace(">中文<", "")
    assert sign_in(client, key="demo-community").status_code == 303
    board = client.get("/").text  # the choice is remembered
    assert "Worklist" in board and "待办案件" not in board and "待研判" not in board
    assert "待办案件" in client.get("/", params={"lang": "zh"}).text


def test_no_console_page_loads_anything_from_outside_the_app(api, case):
    client = signed_in(api, "demo-community")
    pages = [client.get(p) for p in ("/", f"/cases/{case}", "/closed")] + [browser(api).get("/signin")]
    for page in pages:
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for attr, url in re.findall(r'(src|href|action)\s*=\s*["\']([^"\']*)["\']', page.text):
            assert not re.match(r"(https?:)?//", url), f"{page.url} loads {url} from outside"
            if attr == "src" or url.startswith("/static/"):
                assert client.get(url).status_code == 200, url
    assert 'src="/static/console/console.js"' in pages[0].text


def test_a_session_ends_after_its_absolute_lifetime_however_busy(api, clock):
    client = signed_in(api, "demo-community")
    for _ in range(25):  # a request every 29 minutes for 12 hours and more
        clock.advance(timedelta(minutes=29))
        status = client.get("/", follow_redirects=False).status_code
    assert status == 303


def test_the_timeline_shows_recorded_instants_in_local_time_and_units_by_name(api, case):
    api.ok("demo-community", case, "dispatch", {"department": "dept-housing"})
    page = signed_in(api, "demo-housing").get(f"/cases/{case}").text
    timeline = page[page.index('class="timeline"'):]
    assert "T06:00:00+00:00" not in timeline and "期限: 2026-09-30 14:00" in timeline  # 4 working hours
    assert "承办部门: 区住建局" in timeline and "department:" not in timeline
