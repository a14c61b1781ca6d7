"""``/api/v1/admin/clock`` (issue 11, item 10) and the calendar's honesty over HTTP (item 9), on SQLite
and PostgreSQL. The ``app`` fixture runs on a manual clock at Wednesday 2026-09-30 08:00 (Shanghai)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from gridflow.api.app import create_app
from gridflow.bootstrap import bootstrap
from gridflow.engine.calendar import china_year_is_estimated
from gridflow.settings import Settings
from tests.api.helpers import auth
from tests.conftest import START

PROBLEM = "application/problem+json"
EST = next(y for y in range(2027, 2100) if china_year_is_estimated(y))


def _history(api, number):
    r = api.get("demo-admin", f"/cases/{number}/history")
    assert r.status_code == 200, r.text
    body = r.json()
    return [e["type"] for e in (body["data"] if isinstance(body, dict) else body)]


def test_an_admin_sees_the_manual_clock(api):
    r = api.get("demo-admin", "/admin/clock")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "manual" and body["adjustable"] is True
    assert datetime.fromisoformat(body["now"]) == START


def test_advancing_answers_the_new_now_after_due_timers_have_fired(api):
    number = api.report()["number"]
    assert "DeadlineWarned" not in _history(api, number)
    r = api.client.post("/api/v1/admin/clock", json={"advance": "PT4H"}, headers=auth("demo-admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert datetime.fromisoformat(body["now"]) == START + timedelta(hours=4)
    assert datetime.fromisoformat(body["previous"]) == START
    assert body["fired"] >= 1
    assert "DeadlineWarned" in _history(api, number) or "DeadlineBreached" in _history(api, number)
    shown = api.get("demo-admin", "/admin/clock").json()
    assert datetime.fromisoformat(shown["now"]) == START + timedelta(hours=4)


def test_moving_to_an_instant(api):
    r = api.client.post("/api/v1/admin/clock", json={"to": "2026-10-08T09:00:00+08:00"},
                        headers=auth("demo-admin"))
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["now"]) == datetime.fromisoformat("2026-10-08T09:00:00+08:00")


@pytest.mark.parametrize("body, code", [
    ({"advance": "-PT4H"}, "clock_move_refused"),
    ({"advance": "P1000D"}, "clock_move_refused"),
    ({"advance": "soon"}, "clock_move_refused"),
    ({"to": "2026-01-01T00:00:00+08:00"}, "clock_move_refused"),
    ({"to": "2026-10-08T09:00:00"}, "clock_move_refused"),
    ({}, "clock_move_refused"),
    ({"advance": "PT1H", "to": "2026-10-08T09:00:00+08:00"}, "clock_move_refused"),
    ({"advance": "PT1H", "speed": 2}, "request_invalid"),
    ({"to": 1789000000}, "request_invalid"),
])
def test_a_refused_move_is_a_problem_and_leaves_the_clock_where_it_was(api, body, code):
    r = api.client.post("/api/v1/admin/clock", json=body, headers=auth("demo-admin"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == code and r.json()["detail"]
    assert datetime.fromisoformat(api.get("demo-admin", "/admin/clock").json()["now"]) == START


@pytest.mark.parametrize("token, status", [(None, 401), ("demo-community", 403), ("demo-supervisor", 403)])
def test_only_an_admin_drives_the_clock(api, token, status):
    headers = auth(token) if token else {}
    r = api.client.post("/api/v1/admin/clock", json={"advance": "PT1H"}, headers=headers)
    assert r.status_code == status and r.headers["content-type"].startswith(PROBLEM)
    assert api.client.get("/api/v1/admin/clock", headers=headers).status_code == status
    assert datetime.fromisoformat(api.get("demo-admin", "/admin/clock").json()["now"]) == START


def test_on_the_system_clock_moving_is_404_clock_not_manual(sqlite_url):
    gf = bootstrap(Settings(database_url=sqlite_url, environment="test"), runner="inline")
    try:
        client = TestClient(create_app(gf))
        r = client.post("/api/v1/admin/clock", json={"advance": "PT1H"}, headers=auth("demo-admin"))
        assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "clock_not_manual" and "--clock manual" in r.json()["detail"]
        shown = client.get("/api/v1/admin/clock", headers=auth("demo-admin")).json()
        assert shown["kind"] == "system" and shown["adjustable"] is False
    finally:
        gf.close()


# --- calendars over HTTP ----------------------------------------------------------------------


def test_healthz_names_the_estimated_years_without_degrading(api):
    body = api.client.get("/healthz").json()
    assert body["status"] == "ok"
    assert EST in body["calendar_estimated_years"] or EST > START.year + 1
    assert 2026 not in body["calendar_estimated_years"]


def test_a_case_whose_deadline_runs_into_an_estimated_year_says_so(api):
    r = api.client.post("/api/v1/admin/clock", json={"to": f"{EST - 1}-12-30T09:00:00+08:00"},
                        headers=auth("demo-admin"))
    assert r.status_code == 200, r.text
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    api.ok("demo-housing", number, "acknowledge")
    [deadline] = api.get("demo-admin", f"/cases/{number}").json()["deadlines"]
    assert deadline["calendar_estimated"] is True and deadline["calendar_estimated_years"] == [EST]
    assert EST in api.client.get("/healthz").json()["calendar_estimated_years"]


def test_a_deadline_within_an_announced_year_is_not_flagged(api):
    number = api.report()["number"]
    [deadline] = api.get("demo-admin", f"/cases/{number}").json()["deadlines"]
    assert deadline["calendar_estimated"] is False and deadline["calendar_estimated_years"] == []
