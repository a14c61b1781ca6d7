"""GET /api/v1/worklist: most urgent first (most overdue, then least time left), flags on every line,
co-handled cases, and reports outside every grid in the street's or district's triage pool."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from gridflow.adapters.geo import rectangle
from gridflow.processes.runners import InlineTimerRunner
from gridflow.service.admin import create_unit, create_user, issue_api_key
from tests.api.helpers import GRID
from tests.integration.helpers import snapshot

DISTRICT = "370602"


def worklist(api, token: str) -> list[dict]:
    r = api.get(token, "/worklist")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def numbers(api, token: str) -> list[str]:
    return [c["number"] for c in worklist(api, token)]


def line(api, token: str, number: str) -> dict:
    return next(c for c in worklist(api, token) if c["number"] == number)


def in_handling(api) -> str:
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    api.ok("demo-housing", number, "acknowledge")
    return number


@pytest.fixture
def district_dispatcher(api) -> str:
    create_user(api.app.services, "dd-1", "区指挥中心 调度员", "district_dispatcher", DISTRICT)
    return issue_api_key(api.app.services, "dd-1", token="t-district")


def test_the_most_overdue_case_comes_before_a_green_one_with_hours_left(api, clock):
    late = in_handling(api)
    _, _, timers = snapshot(api.app.services, late)
    first_breach = min(t.due_at for t in timers if t.kind == "breach")
    clock.set(first_breach + timedelta(hours=110))
    InlineTimerRunner(api.app.services).run_due()
    fresh = api.report()["number"]
    api.ok("demo-community", fresh, "dispatch", {"department": "dept-housing"})
    lines = {c["number"]: c for c in worklist(api, "demo-housing")}
    overdue, green = lines[late], lines[fresh]
    hours = lambda at: (datetime.fromisoformat(at) - clock.now()).total_seconds() / 3600  # noqa: E731
    assert hours(overdue["due_at"]) == -110 and 0 < hours(green["due_at"]) < 24  # 110 h late, 18 h left
    assert overdue["overdue"] and overdue["sla"]["light"] == "red" and overdue["sla"]["left_s"] < 0
    assert not green["overdue"] and green["sla"]["light"] == "green" and green["sla"]["left_s"] > 0
    # sorting by the next timer (the overdue case's next repeat) would have put the green case first
    assert overdue["next_due_at"] > green["due_at"]
    assert numbers(api, "demo-housing").index(late) < numbers(api, "demo-housing").index(fresh)


def test_cases_without_a_running_deadline_come_last(api, clock):
    paused = in_handling(api)
    api.ok("demo-housing", paused, "request_suspension",
           {"reason_code": "resident_unavailable", "reason": "等待产权人回国", "duration": "5wd"})
    api.ok("demo-community", paused, "approve_suspension")
    running = in_handling(api)
    order = numbers(api, "demo-housing")
    assert order.index(running) < order.index(paused)


def test_lines_carry_the_suspended_supervised_escalated_and_overdue_flags(api, clock):
    suspended = in_handling(api)
    api.ok("demo-housing", suspended, "request_suspension",
           {"reason_code": "resident_unavailable", "reason": "等待产权人回国", "duration": "5wd"})
    api.ok("demo-community", suspended, "approve_suspension")
    supervised = in_handling(api)
    api.ok("demo-supervisor", supervised, "supervise", {"instructions": "请加快办理"})
    s = line(api, "demo-housing", suspended)
    assert s["suspended"] is True and s["supervised"] is False and s["escalated"] == 0
    assert s["overdue"] is False and s["escalation_alert"] is False
    v = line(api, "demo-housing", supervised)
    assert v["supervised"] is True and v["suspended"] is False
    assert supervised in numbers(api, "demo-supervisor")


def test_a_department_sees_the_cases_it_co_handles(api, clock):
    number = in_handling(api)
    assert number not in numbers(api, "demo-urban")
    with api.app.services.db.write_engine.begin() as conn:  # what the co-handling orders maintain
        conn.execute(sa.text("UPDATE cases SET co_units = ',dept-urban,' WHERE number = :n"), {"n": number})
    assert number in numbers(api, "demo-urban")


def test_a_report_outside_every_grid_lands_in_the_districts_triage_pool(api, district_dispatcher):
    case = api.report("demo-hotline", unit=None, location={"lat": 10.0, "lon": 10.0})
    number = case["number"]
    assert number in numbers(api, district_dispatcher)
    assert number not in numbers(api, "demo-community")
    assert number not in numbers(api, "demo-street")
    detail = api.get(district_dispatcher, f"/cases/{number}").json()
    assert detail["holder_unit"] == DISTRICT and detail["origin_unit"] == DISTRICT
    assert {"dispatch", "reject", "merge", "handle_locally"} <= set(detail["allowed_actions"])


def test_a_report_outside_every_grid_but_inside_a_street_lands_in_that_streets_pool(api, district_dispatcher):
    svc = api.app.services
    create_unit(svc, "370602099", "新区街道", "street", DISTRICT, rectangle(120.0, 30.0, 120.1, 30.1))
    create_user(svc, "sd-new", "新区街道 调度员", "street_dispatcher", "370602099")
    street = issue_api_key(svc, "sd-new", token="t-new-street")
    case = api.report("demo-hotline", unit=None, location={"lat": 30.05, "lon": 120.05})
    number = case["number"]
    detail = api.get(street, f"/cases/{number}").json()
    assert detail["holder_unit"] == "370602099" and detail["street_code"] == "370602099"
    assert number in numbers(api, street)
    assert number not in numbers(api, district_dispatcher)  # the street triages it
    assert api.ok(street, number, "dispatch", {"department": "dept-housing"})["state"] == "dispatched"


def test_a_report_inside_a_grid_still_goes_to_its_community(api):
    number = api.report(unit=GRID)["number"]
    assert number in numbers(api, "demo-community")


def test_a_case_the_community_handled_itself_comes_back_to_it_for_rework(api):
    number = api.report()["number"]
    api.ok("demo-community", number, "handle_locally", {"result": "已清理"})
    back = api.ok("demo-grid-worker", number, "rate", {"rating": "dissatisfied"})
    assert back["state"] == "handling"
    seen = line(api, "demo-community", number)  # held by the community itself, in a department's state
    assert seen["holder_unit"] == "370602001001"
    assert "reply_locally" in api.get("demo-community", f"/cases/{number}").json()["allowed_actions"]
    assert api.ok("demo-community", number, "reply_locally", {"result": "已彻底清理"})["state"] \
        == "awaiting_feedback"
    refused = api.act("demo-community-2", number, "reply_locally", {"result": "x"})
    assert refused.status_code == 404  # another community does not see it at all


# --- pages (keyset over due_at NULLS LAST, id) and arms --------------------------------------------

def _pages(api, token: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        params = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        r = api.get(token, "/worklist", **params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([c["number"] for c in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor never ends"


def test_worklist_pages_hand_out_every_open_case_once_in_order_the_undeadlined_tail_included(api, clock):
    handled = []
    for i in range(5):
        handled.append(in_handling(api))
        clock.advance(timedelta(minutes=7 * (i + 1)))
    for number in handled[1:3]:  # no running deadline: the tail, after every case with one
        api.ok("demo-housing", number, "request_suspension",
               {"reason_code": "resident_unavailable", "reason": "等待产权人回国", "duration": "5wd"})
        api.ok("demo-community", number, "approve_suspension")
    co = api.report()["number"]  # co-handled by the housing bureau: its own arm
    api.ok("demo-community", co, "dispatch", {"department": "dept-urban", "co_handlers": ["dept-housing"]})
    whole = numbers(api, "demo-housing")
    assert set(handled) | {co} <= set(whole) and len(whole) == len(set(whole))
    for limit in (1, 2, 3):
        pages = _pages(api, "demo-housing", limit)
        assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit
        assert [n for p in pages for n in p] == whole  # each exactly once, in the worklist's order


def test_a_worklist_cursor_is_opaque_and_a_forged_or_foreign_one_is_a_request_error(api):
    for _ in range(2):
        in_handling(api)
    first = api.get("demo-housing", "/worklist", limit=1).json()
    assert first["next_cursor"] and "|" not in first["next_cursor"]
    listed = api.get("demo-admin", "/cases", limit=1).json()["next_cursor"]
    for forged in ("bm9wZQ", "dzp4Ono", listed, "dzo5OTk5OTk5OTk5OTk5OTk5OTk5OjE"):
        r = api.get("demo-housing", "/worklist", cursor=forged)
        assert r.status_code == 422, (forged, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "request_invalid" and r.json()["fields"] == {"cursor": "invalid"}


def test_a_case_in_scope_by_two_terms_is_on_the_worklist_and_the_list_once(api):
    # Reported by the community's dispatcher in its own community, and held there: in its scope by
    # community_code, holder_unit and reporter_id alike (three arms).
    number = api.report("demo-community")["number"]
    assert numbers(api, "demo-community").count(number) == 1
    listed = [c["number"] for c in api.get("demo-community", "/cases", limit=200).json()["data"]]
    assert listed.count(number) == 1
