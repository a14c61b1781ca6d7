"""Escalation hands the case up: an unacknowledged grid_event climbs street → district → city, and at
each level that unit's dispatcher (or the city's supervisor) finds it on GET /api/v1/worklist with the
upper-level actions to take on it — re-dispatch (改派), take over (提级办理) — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from gridflow.api.app import create_app
from gridflow.processes.runners import InlineTimerRunner
from gridflow.service.admin import create_user, issue_api_key
from tests.api.helpers import GRID, Api
from tests.integration.helpers import snapshot

STREET = "370602001"
DISTRICT = "370602"
CITY = "3706"


@pytest.fixture
def api(app) -> Api:
    svc = app.services
    create_user(svc, "dd-1", "区指挥中心 调度员", "district_dispatcher", DISTRICT)
    issue_api_key(svc, "dd-1", token="t-district")
    create_user(svc, "sv-city", "市指挥中心 督办员", "supervisor", CITY)
    issue_api_key(svc, "sv-city", token="t-city")
    return Api(TestClient(create_app(app)), app)


def on_worklist(api: Api, token: str, number: str) -> dict | None:
    r = api.get(token, "/worklist")
    assert r.status_code == 200, r.text
    return next((c for c in r.json()["data"] if c["number"] == number), None)


def breach_acknowledge(api: Api, clock, number: str) -> None:
    """Let the pending acknowledge deadline (or its next repeat) pass, and fire what fell due."""
    _, _, timers = snapshot(api.app.services, number)
    due = min(t.due_at for t in timers if t.kind == "breach")
    clock.set(due + timedelta(seconds=1))
    InlineTimerRunner(api.app.services).run_due()


def routed_to(api: Api, number: str) -> list[dict]:
    return [e.data for e in snapshot(api.app.services, number)[1] if e.type == "EscalationRouted"]


def test_an_unacknowledged_case_climbs_to_street_district_and_city_and_each_level_can_act(api, clock):
    case = api.report("demo-grid-worker", unit=GRID)
    number = case["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    assert on_worklist(api, "demo-street", number) is None  # a department's job, not yet the street's

    # street: the unit above the case's community gets it, and re-dispatches it (改派)
    breach_acknowledge(api, clock, number)
    assert routed_to(api, number)[-1] == {"level": "street", "unit": STREET}
    seen = on_worklist(api, "demo-street", number)
    assert seen is not None and seen["escalated"] == 1 and seen["escalation_unit"] == STREET
    assert seen["overdue"] is True
    detail = api.get("demo-street", f"/cases/{number}").json()
    assert {"reassign", "take_over", "supervise"} <= set(detail["allowed_actions"])
    moved = api.ok("demo-street", number, "reassign", {"department": "dept-urban", "reason": "属城管职责"})
    assert moved["state"] == "dispatched"
    assert on_worklist(api, "demo-urban", number) is not None
    assert on_worklist(api, "demo-housing", number) is None

    # district: the street's worklist lets it go, the district's dispatcher and supervisor have it
    breach_acknowledge(api, clock, number)
    assert routed_to(api, number)[-1] == {"level": "district", "unit": DISTRICT}
    assert on_worklist(api, "demo-street", number) is None
    assert on_worklist(api, "t-district", number)["escalated"] == 2
    assert on_worklist(api, "demo-supervisor", number) is not None
    refused = api.act("demo-street", number, "take_over", {"reason": "街道接手"})
    # no longer the street's to take
    assert refused.status_code == 409 and refused.json()["code"] == "guard_failed"
    assert "take_over" in api.get("t-district", f"/cases/{number}").json()["allowed_actions"]

    # city: the city's supervisor has it; at the top it stays there, flagged, and the city takes it over
    breach_acknowledge(api, clock, number)
    assert routed_to(api, number)[-1] == {"level": "city", "unit": CITY}
    assert on_worklist(api, "t-city", number)["escalated"] == 3
    breach_acknowledge(api, clock, number)
    types = [e.type for e in snapshot(api.app.services, number)[1]]
    assert types.count("EscalationAlertRaised") == 1 and types.count("CaseEscalated") == 3
    top = on_worklist(api, "t-city", number)
    assert top is not None and top["escalation_alert"] is True and top["escalated"] == 3
    taken = api.ok("t-city", number, "take_over", {"reason": "市级提级办理"})
    assert taken["state"] == "taken_over"
    row, events, _ = snapshot(api.app.services, number)
    assert row.holder_unit == CITY
    assert on_worklist(api, "t-city", number)["state"] == "taken_over"
    done = api.ok("t-city", number, "reply_taken_over", {"result": "已协调修复"})
    assert done["state"] == "awaiting_feedback"


def test_a_case_filed_outside_every_grid_escalates_to_the_nearest_unit_above_and_says_so(api, clock):
    # a hotline operator of the district logs a point outside every grid: the district's triage pool
    case = api.report("demo-hotline", unit=None, location={"lat": 10.0, "lon": 10.0})
    number = case["number"]
    row, _, _ = snapshot(api.app.services, number)
    assert (row.origin_unit, row.holder_unit, row.community_code) == (DISTRICT, DISTRICT, None)
    assert on_worklist(api, "t-district", number) is not None
    assert on_worklist(api, "demo-community", number) is None
    _, _, timers = snapshot(api.app.services, number)
    clock.set(min(t.due_at for t in timers if t.kind == "breach") + timedelta(seconds=1))
    InlineTimerRunner(api.app.services).run_due()
    [route] = routed_to(api, number)
    assert route["unit"] == DISTRICT and route["unit_kind"] == "district"
    assert "no street unit" in route["note"]
    row, _, _ = snapshot(api.app.services, number)
    assert row.escalation_unit == DISTRICT and row.escalation_level == 2  # worked at the district's level
    seen = on_worklist(api, "t-district", number)
    assert seen is not None and seen["escalated"] == 2
    assert api.ok("t-district", number, "dispatch", {"department": "dept-housing"})["state"] == "dispatched"


def test_a_dispatcher_recalls_a_case_not_yet_signed_for_and_dispatches_it_again(api, clock):
    number = api.report("demo-grid-worker", unit=GRID)["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    back = api.ok("demo-community", number, "recall", {"reason": "派错部门"})
    assert back["state"] == "reported"
    assert on_worklist(api, "demo-community", number) is not None
    assert on_worklist(api, "demo-housing", number) is None
    again = api.ok("demo-community", number, "dispatch", {"department": "dept-urban"})
    assert again["state"] == "dispatched" and on_worklist(api, "demo-urban", number) is not None
    api.ok("demo-urban", number, "acknowledge")
    late = api.act("demo-community", number, "recall", {"reason": "太晚了"})
    assert late.status_code == 409 and late.json()["code"] == "action_not_allowed"  # signed for: no recall
    taken = [e.data for e in snapshot(api.app.services, number)[1] if e.type == "ActionTaken"]
    assert [e["action"] for e in taken] == ["dispatch", "recall", "dispatch", "acknowledge"]


def test_the_worklist_query_and_the_pure_rule_agree_and_every_open_case_is_on_a_worklist(api, clock):
    from gridflow.adapters.codec import snapshot_of
    from gridflow.adapters.orm import CaseRow
    from gridflow.engine.worklists import CasePlace, worklist_roles
    from gridflow.service import lists
    from gridflow.service.auth import authenticate
    from sqlmodel import select

    svc = api.app.services
    fresh = api.report()["number"]
    dispatched = api.report()["number"]
    api.ok("demo-community", dispatched, "dispatch", {"department": "dept-housing"})
    suspended = api.report()["number"]
    api.ok("demo-community", suspended, "dispatch", {"department": "dept-urban"})
    api.ok("demo-urban", suspended, "acknowledge")
    api.ok("demo-urban", suspended, "request_suspension",
           {"reason_code": "resident_unavailable", "reason": "等待", "duration": "5wd"})
    api.ok("demo-community", suspended, "approve_suspension")
    api.ok("demo-supervisor", suspended, "supervise", {"instructions": "跟进"})
    local = api.report()["number"]
    api.ok("demo-community", local, "handle_locally", {"result": "已处理"})
    api.ok("demo-grid-worker", local, "rate", {"rating": "dissatisfied"})
    outside = api.report("demo-hotline", unit=None, location={"lat": 10.0, "lon": 10.0})["number"]
    hotline = api.report("demo-hotline", workflow="hotline_request")["number"]
    breach_acknowledge(api, clock, dispatched)
    breach_acknowledge(api, clock, dispatched)  # to the district
    tokens = ["demo-supervisor", "demo-street", "demo-community", "demo-community-2", "demo-grid-worker",
              "demo-housing", "demo-urban", "demo-hotline", "demo-resident", "t-district", "t-city"]
    callers = [authenticate(svc, t) for t in tokens]
    seen: dict[str, set[str]] = {}
    for caller in callers:
        for line in lists.worklist(svc, caller, limit=200):
            seen.setdefault(line.number, set()).add(caller.role)
    with svc.uow(write=False) as uow:
        rows = list(uow.session.exec(select(CaseRow).where(CaseRow.closed == False)))  # noqa: E712
    assert {fresh, dispatched, suspended, local, outside, hotline} <= {r.number for r in rows}
    for row in rows:
        defn = svc.catalog.get(row.workflow, row.workflow_version)
        snap = snapshot_of(row, defn.escalation.top)
        areas = frozenset(u.kind for u in svc.units.ancestors(row.origin_unit))
        holder = svc.units.get(row.holder_unit)
        roles = worklist_roles(defn, snap, CasePlace(areas, holder.kind if holder else None))
        assert seen.get(row.number), f"{row.number} ({row.state}) is on nobody's worklist"
        assert seen[row.number] <= roles, (row.number, row.state, seen[row.number], roles)


def test_a_community_referring_a_case_up_hands_it_to_its_street(api, clock):
    number = api.report("demo-grid-worker", unit=GRID)["number"]
    referred = api.ok("demo-community", number, "refer_to_street", {"reason": "跨社区"})
    assert referred["state"] == "street_triage"
    assert routed_to(api, number) == [{"level": "street", "unit": STREET}]
    seen = on_worklist(api, "demo-street", number)
    assert seen is not None and seen["escalated"] == 1
    assert api.ok("demo-street", number, "dispatch", {"department": "dept-urban"})["state"] == "dispatched"


def test_an_unsigned_hotline_request_climbs_to_the_district_centre_which_can_re_dispatch_it(api, clock):
    number = api.report("demo-hotline", workflow="hotline_request", unit=GRID)["number"]
    api.ok("demo-hotline", number, "dispatch", {"unit": "dept-housing", "urgency": "general"})
    breach_acknowledge(api, clock, number)  # the sign-for limit passes
    assert routed_to(api, number)[-1] == {"level": "district", "unit": DISTRICT}
    seen = on_worklist(api, "demo-supervisor", number)
    assert seen is not None and seen["escalated"] == 1
    allowed = api.get("demo-supervisor", f"/cases/{number}").json()["allowed_actions"]
    assert {"reassign", "take_over"} <= set(allowed)
    moved = api.ok("demo-supervisor", number, "reassign", {"unit": "dept-urban", "reason": "属城管"})
    assert moved["state"] == "signing" and on_worklist(api, "demo-urban", number) is not None
    recalled = api.ok("demo-hotline", number, "recall", {"reason": "重新派单"})
    assert recalled["state"] == "accepted"
