"""Clocks nobody can game over HTTP (issue 11 item 4): refusals are problem+json with stable codes,
a suspended case shows as suspended, the handling limit counts from dispatch."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = datetime(2026, 11, 9, 9, 0, tzinfo=SH)


def _handling(api, clock) -> str:
    clock.set(MONDAY_9)
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    api.ok("demo-housing", number, "acknowledge")
    return number


def test_a_third_extension_is_refused_as_problem_json(api, clock):
    number = _handling(api, clock)
    for _ in range(2):
        api.ok("demo-housing", number, "request_extension", {"duration": "1wd", "reason": "需协调物业"})
        api.ok("demo-community", number, "approve_extension")
    r = api.act("demo-housing", number, "request_extension", {"duration": "1wd", "reason": "再延"})
    assert 400 <= r.status_code < 500 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "guard_failed" and "at most 2" in str(problem)


def test_a_department_cannot_suspend_without_the_dispatchers_approval(api, clock):
    number = _handling(api, clock)
    body = {"reason_code": "resident_unavailable", "reason": "业主外出", "duration": "5wd"}
    api.ok("demo-housing", number, "request_suspension", body)
    r = api.act("demo-housing", number, "approve_suspension")
    assert 400 <= r.status_code < 500 and r.headers["content-type"] == "application/problem+json"
    api.ok("demo-community", number, "approve_suspension")
    case = api.get("demo-community", f"/cases/{number}").json()
    assert case["state"] == "suspended" and case["sla"]["light"] == "suspended"
    assert case["sla"]["left_s"] > 0


def test_a_return_needs_a_reason_from_the_list(api, clock):
    clock.set(MONDAY_9)
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    r = api.act("demo-housing", number, "return_case", {"reason": "不归我们管"})
    assert r.status_code == 422 and r.json()["code"] == "payload_invalid"
    ok = api.ok("demo-housing", number, "return_case",
                {"reason_code": "not_our_duty", "reason": "不归我们管"})
    assert ok["state"] == "reported"
