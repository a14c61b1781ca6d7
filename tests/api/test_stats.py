"""GET /api/v1/stats/sla: the three rates per unit, counted from history, with their definitions in the
API's own description (docs/three-rates.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest


def _units(api, token: str = "demo-supervisor", **params) -> dict:
    r = api.get(token, "/stats/sla", **params)
    assert r.status_code == 200, r.text
    return {u["unit"]: u for u in r.json()["units"]}


def test_a_department_that_never_signed_for_shows_zero_not_one_hundred_percent(api):
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    api.app.services.clock.advance(timedelta(days=12))
    api.app.runner.run_due()
    housing = _units(api)["dept-housing"]
    assert housing["receipts"] == 1 and housing["awaiting_response"] == 1
    assert housing["response_rate"] == 0.0 and housing["responded"] == 0
    community = _units(api)["370602001001"]
    assert community["receipts"] == 0 and community["response_rate"] is None


def test_hotline_unrated_closes_are_shown_apart_and_left_out_of_satisfaction(api):
    numbers = []
    for _ in range(4):
        n = api.report("demo-hotline", workflow="hotline_request")["number"]
        api.ok("demo-hotline", n, "dispatch", {"unit": "dept-urban", "urgency": "general"})
        api.ok("demo-urban", n, "sign_for")
        api.ok("demo-urban", n, "contact_requester", {"reached": True})
        api.ok("demo-urban", n, "reply", {"result": "已处理"})
        api.ok("demo-hotline", n, "call_back", {"reached": True})
        numbers.append(n)
    for n in numbers[:2]:
        api.ok("demo-hotline", n, "rate", {"rating": "satisfied"})
    api.app.services.clock.advance(timedelta(days=20))
    api.app.runner.run_due()
    urban = _units(api)["dept-urban"]
    assert (urban["rated"], urban["satisfied"], urban["rated_by_default"]) == (2, 2, 2)
    assert urban["satisfaction_rate"] == 1.0 and urban["response_rate"] == 1.0
    assert urban["resolved"] == 4 and urban["resolution_rate"] == 1.0


def test_the_route_describes_every_rate_in_chinese_and_english(api):
    op = api.client.get("/openapi.json").json()["paths"]["/api/v1/stats/sla"]["get"]
    text = op["description"]
    for words in ("响应率", "解决率", "满意率", "response rate", "resolution rate", "satisfaction rate",
                  "rate_default", "Asia/Shanghai", "inclusive", "退单", "sign_for"):
        assert words in text, words
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["UnitStatsPublic"]["properties"]
    for name in ("receipts", "responded_on_time", "unanswered_returned", "received", "resolved", "merged",
                 "rejected", "open", "rated", "rated_by_default", "rating_missing", "rework_rounds",
                 "failed_reviews", "returns", "improper_returns", "extensions", "suspensions",
                 "supervision_orders", "reminders", "criticism_notices", "breaches", "escalations"):
        assert name in schema, name


def test_refusals_are_problems_with_stable_codes(api):
    bad = api.get("demo-supervisor", "/stats/sla", **{"from": "2026-10-02", "to": "2026-10-01"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["code"]
    denied = api.get("demo-resident", "/stats/sla")
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    assert api.get(None, "/stats/sla").status_code == 401


@pytest.mark.parametrize("fmt, media, magic", [("csv", "text/csv", b"\xef\xbb\xbf"),
                                               ("html", "text/html", b"<!doctype html>"),
                                               ("png", "image/png", b"\x89PNG")])
def test_the_sla_report_downloads_as_a_file_with_the_same_scope(api, fmt, media, magic):
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    r = api.get("demo-supervisor", "/stats/sla/report", format=fmt,
                **{"from": "2026-09-30", "to": "2026-09-30"})
    assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    assert r.content.startswith(magic)
    assert r.headers["content-disposition"] == f'attachment; filename="sla-2026-09-30-2026-09-30.{fmt}"'
    if fmt == "csv":
        assert "dept-housing" in r.content.decode("utf-8-sig")
        other = api.get("demo-community-2", "/stats/sla/report", format="csv").content.decode("utf-8-sig")
        assert "dept-housing" not in other  # another community's dispatcher counts none of it


def test_the_sla_report_refuses_residents_and_unknown_formats(api):
    assert api.get("demo-resident", "/stats/sla/report").status_code == 403
    bad = api.get("demo-supervisor", "/stats/sla/report", format="xlsx")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
