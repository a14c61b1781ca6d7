"""A report repeating an open case is flagged at triage with the candidates and why (SQLite, PostgreSQL):
the same category nearby and recent, or the same caller's phone; closed cases and other places are not."""

from __future__ import annotations

from datetime import timedelta

from gridflow.demo.seed import grid_center

from .helpers import GRID

LAT, LON = grid_center(GRID)
METRE = 1 / 111_195  # degrees of latitude


def _case(api, number: str) -> dict:
    r = api.get("demo-community", f"/cases/{number}")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_second_report_nearby_is_flagged_with_the_first_as_candidate(api):
    first = api.report(category="C0301", location={"lat": LAT, "lon": LON})["number"]
    second = api.report(category="C0301", location={"lat": LAT + 30 * METRE, "lon": LON})["number"]
    flags = _case(api, second)["data"]["duplicate_candidates"]
    assert [c["number"] for c in flags] == [first]
    assert flags[0]["distance_m"] == 30 and flags[0]["reason"].startswith("同类别，相距 30 米")
    assert "duplicate_candidates" not in _case(api, first)["data"]
    reported = api.get("demo-community", f"/cases/{second}/history").json()["data"][0]
    assert reported["type"] == "CaseReported" and reported["data"]["duplicate_candidates"] == flags
    # triage can merge it into the candidate
    api.ok("demo-community", second, "merge", {"duplicate_of": first})


def test_other_categories_far_places_old_and_closed_cases_are_not_candidates(api, app):
    closed = api.report(category="C0301", location={"lat": LAT, "lon": LON})["number"]
    api.ok("demo-community", closed, "reject", {"reason": "重复上报"})
    api.report(category="C0302", location={"lat": LAT, "lon": LON})
    api.report(category="C0301", location={"lat": LAT + 500 * METRE, "lon": LON})
    old = api.report(category="C0301", location={"lat": LAT, "lon": LON})["number"]
    app.services.clock.advance(timedelta(hours=73))
    new = api.report(category="C0301", location={"lat": LAT + 10 * METRE, "lon": LON})["number"]
    assert "duplicate_candidates" not in _case(api, new)["data"], old


def test_the_hotline_flags_the_same_callers_earlier_open_request(api):
    body = {"workflow": "hotline_request", "category": "H0103", "title": "噪音扰民", "unit": GRID,
            "reporter": {"name": "张三", "phone": "13912345678"}}
    hotline = {"X-API-Key": "demo-hotline"}
    first = api.client.post("/api/v1/cases", json=body, headers=hotline).json()["number"]
    second = api.client.post("/api/v1/cases", json={**body, "title": "又来噪音"},
                             headers=hotline).json()["number"]
    flags = api.get("demo-hotline", f"/cases/{second}").json()["data"]["duplicate_candidates"]
    assert [c["number"] for c in flags] == [first] and flags[0]["same_phone"]
    assert "13912345678" not in str(flags)
