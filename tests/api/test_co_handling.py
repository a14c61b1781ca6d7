"""主办/协办 and 督办单 over HTTP: a lead and two co-handling departments; the lead's reply waits until
both answered (or a dispatcher closed a part); each co-handler sees and works the case while its part
is open. (Worklists are another change's; visibility is asserted on the case itself.)"""

from __future__ import annotations

import pytest

from gridflow.service.admin import create_user, issue_api_key
from tests.api.helpers import Api

WATER = "test-water"  # a water-bureau handler's API key (the demo seeds none)


@pytest.fixture
def api_water(api: Api) -> Api:
    svc = api.app.services
    create_user(svc, "dh-water", "水务局 承办人", "department_handler", "dept-water")
    issue_api_key(svc, "dh-water", "test", token=WATER)
    return api


def _co_dispatched(api: Api, co=("dept-urban", "dept-water")) -> str:
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing", "co_handlers": list(co)})
    return number


def test_the_lead_reply_waits_until_both_co_handlers_answered(api_water):
    api = api_water
    number = _co_dispatched(api)
    for token in ("demo-urban", WATER):  # each co-handler sees the case and its part
        r = api.get(token, f"/cases/{number}")
        assert r.status_code == 200, r.text
        assert r.json()["holder_unit"] == "dept-housing"
        assert "sign_part" in r.json()["allowed_actions"]
    api.ok("demo-housing", number, "acknowledge")
    refused = api.act("demo-housing", number, "reply", {"result": "已修复"})
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "guard_failed" and refused.json()["guard"] == "parts_settled"
    assert "dept-urban, dept-water" in refused.json()["detail"]
    early = api.act("demo-urban", number, "answer_part", {"answer": "已处理"})
    assert early.status_code == 409 and "sign for it first" in early.json()["detail"]
    api.ok("demo-urban", number, "sign_part")
    api.ok("demo-urban", number, "answer_part", {"answer": "占道已清理"})
    assert api.get("demo-urban", f"/cases/{number}").status_code == 404  # answered: no longer its case
    refused = api.act("demo-housing", number, "reply", {"result": "已修复"})
    assert refused.status_code == 409 and "still open: dept-water" in refused.json()["detail"]
    api.ok(WATER, number, "sign_part")
    api.ok(WATER, number, "answer_part", {"answer": "管道已修复"})
    done = api.ok("demo-housing", number, "reply", {"result": "已修复"})
    assert done["state"] == "awaiting_feedback"
    history = api.get("demo-community", f"/cases/{number}/history").json()
    entries = history["data"] if isinstance(history, dict) else history
    types = [e["type"] for e in entries]
    assert types.count("CoHandlingOpened") == 2 and types.count("CoHandlingAnswered") == 2


def test_a_dispatcher_closes_a_part_and_the_lead_may_reply(api_water):
    api = api_water
    number = _co_dispatched(api)
    api.ok("demo-housing", number, "acknowledge")
    api.ok(WATER, number, "sign_part")
    api.ok(WATER, number, "answer_part", {"answer": "已处理"})
    own = api.act("demo-urban", number, "close_part", {"unit": "dept-urban", "reason": "x"})
    assert own.status_code == 403  # a co-handler does not close its own part
    api.ok("demo-community", number, "close_part", {"unit": "dept-urban", "reason": "经核实无需城管协办"})
    assert api.get("demo-urban", f"/cases/{number}").status_code == 404
    assert api.ok("demo-housing", number, "reply", {"result": "已修复"})["state"] == "awaiting_feedback"


def test_a_unit_with_no_part_neither_sees_nor_signs(api_water):
    api = api_water
    number = _co_dispatched(api, co=("dept-water",))
    assert api.get("demo-urban", f"/cases/{number}").status_code == 404
    assert api.act("demo-urban", number, "sign_part").status_code == 404


def test_unknown_co_handlers_are_refused_like_the_lead_unit(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "dispatch",
                {"department": "dept-housing", "co_handlers": ["dept-urban", "dept-nowhere"]})
    assert r.status_code == 422 and r.json()["code"] == "payload_invalid"
    assert list(r.json()["fields"]) == ["co_handlers"] and "dept-nowhere" in r.json()["fields"]["co_handlers"]
    lead = api.act("demo-community", number, "dispatch", {"department": "dept-nowhere"})
    assert lead.status_code == 422 and list(lead.json()["fields"]) == ["department"]
    assert api.get("demo-community", f"/cases/{number}").json()["state"] == "reported"


def test_a_supervision_order_is_issued_and_answered_over_http(api):
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    missing = api.act("demo-supervisor", number, "supervise", {"level": "key"})
    assert missing.status_code == 422 and "instructions" in missing.json()["fields"]
    issued = api.ok("demo-supervisor", number, "supervise", {"level": "key", "instructions": "今日内签收"})
    order = next(e for e in issued["events"] if e["type"] == "SupervisionOrderIssued")
    assert order["data"]["order"] == "SO-1" and order["data"]["unit"] == "dept-housing"
    case = api.get("demo-supervisor", f"/cases/{number}").json()
    assert case["supervised"] is True
    answered = api.ok("demo-housing", number, "reply_supervision_order", {"reply": "已安排人员今日到场"})
    event = next(e for e in answered["events"] if e["type"] == "SupervisionOrderAnswered")
    assert event["data"] == {"order": "SO-1", "unit": "dept-housing", "on_time": True}
    again = api.act("demo-housing", number, "reply_supervision_order", {"reply": "再答复"})
    assert again.status_code == 409 and "no supervision order is open" in again.json()["detail"]
