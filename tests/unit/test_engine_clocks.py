"""Clocks nobody can game (issue 11): where handling limits start, catching up after downtime without
floods, capped extensions, approved suspensions with a ceiling, reviewed returns, and action kinds.

Times are Shanghai wall-clock times in a quiet week (Monday 2026-03-09 onwards); office hours are
08:30-12:00 and 13:30-17:30.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from gridflow.engine import (
    Actor, DefinitionError, Engine, GuardFailed, ManualClock, PayloadInvalid, load_text,
)
from gridflow.engine.definition import ACTION_KINDS, Route
from gridflow.engine.durations import WORKING_DAYS
from tests.unit.helpers import (
    CALENDARS, COMMUNITY, DEPT, MONDAY_9, REPORTER, STREET, Runner, at, local, workflow,
)

OPERATOR = Actor("op-1", "hotline_operator", "hotline-centre")
WATER = Actor("water-1", "department_handler", "water-company")
POWER = Actor("power-1", "department_handler", "power-company")
OTHER_DEPT = Actor("dept-2", "department_handler", "greening")


def grid_case(shipped, start=MONDAY_9) -> Runner:
    r = Runner(Engine(shipped["grid_event"], CALENDARS), ManualClock(start))
    r.open(REPORTER, origin_unit="community-1")
    return r


def hotline_case(shipped, start=MONDAY_9) -> Runner:
    r = Runner(Engine(shipped["hotline_request"], CALENDARS), ManualClock(start))
    r.open(OPERATOR, origin_unit="community-1")
    return r


def started(r: Runner, timer: str) -> list:
    return [e for e in r.events if e.type == "DeadlineStarted" and e.data["timer"] == timer]


def types(decisions) -> list[str]:
    return [e.type for d in decisions for e in d.events]


# --- 1. action kinds ----------------------------------------------------------------------------


def test_every_action_of_every_shipped_workflow_declares_a_kind_of_the_shared_vocabulary(shipped):
    for defn in shipped.values():
        for act in defn.actions.values():
            assert "kind" in defn.raw["actions"][act.name], (defn.key, act.name)
            assert act.kind in ACTION_KINDS


def test_the_kind_of_the_action_is_recorded_in_the_action_taken_event(run):
    run.act("dispatch", COMMUNITY, {"department": "housing"})
    run.act("acknowledge", DEPT)
    taken = [e.data for e in run.events if e.type == "ActionTaken"]
    assert [(t["action"], t["kind"]) for t in taken] == [
        ("dispatch", "dispatch"), ("acknowledge", "sign_for")]


def test_the_loader_refuses_an_unknown_kind_on_its_line():
    text = """\
name: kinds
roles: [community_dispatcher]
initial: a
states:
  a: {}
  b: {final: true}
actions:
  go:
    kind: teleport
    from: a
    to: b
    roles: [community_dispatcher]
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "kinds.yaml", calendars=CALENDARS)
    [p] = err.value.problems
    assert (p.file, p.line, p.element) == ("kinds.yaml", 9, "action go")
    assert "unknown kind 'teleport'" in p.message


# --- 2. where the handling limit starts ---------------------------------------------------------


def test_a_slow_sign_for_buys_no_handling_time_the_16_working_hours_count_from_dispatch(shipped):
    r = grid_case(shipped)
    r.act("dispatch", COMMUNITY, {"department": "housing"})  # Monday 09:00
    handle = r.deadline("handle")
    r.clock.set(at(2026, 3, 10, 17, 0))  # signed for on Tuesday 17:00 (the runner fired nothing meanwhile)
    r.act("acknowledge", DEPT)
    after = r.deadline("handle")
    assert r.case.state == "handling" and after.id == handle.id and after.started_at == at(2026, 3, 9, 9, 0)
    # 16 working hours from Monday 09:00: 7 on Monday, 7.5 on Tuesday, 1.5 on Wednesday
    assert local(after.due_at) == at(2026, 3, 11, 10, 0)
    assert len(started(r, "handle")) == 1  # carried on, not restarted
    assert not any(e.type == "DeadlineStopped" and e.data["timer"] == "handle" for e in r.events)
    assert r.engine.explain(r.case, r.clock.now())[0].used_s == 14 * 3600  # 2 working hours left


def test_the_carried_deadline_follows_the_destination_timers_warnings_and_breach_policy(shipped):
    r = grid_case(shipped)
    r.act("dispatch", COMMUNITY, {"department": "housing"})
    r.act("acknowledge", DEPT)
    assert r.deadline("handle").state == "handling"
    fired = r.advance_to(at(2026, 3, 11, 10, 0))
    assert "DeadlineBreached" in types(fired) and r.case.supervised
    assert local(r.timer("breach", "handle").due_at) == at(2026, 3, 18, 17, 30)  # again every 5wd


def test_a_rework_round_starts_a_fresh_handling_clock(shipped):
    r = grid_case(shipped)
    r.act("dispatch", COMMUNITY, {"department": "housing"})
    r.act("acknowledge", DEPT)
    r.act("reply", DEPT, {"result": "已修复"})
    r.advance(hours=2)
    r.act("rate", REPORTER, {"rating": "dissatisfied"})
    assert r.case.state == "handling" and r.deadline("handle").started_at == r.clock.now()
    assert len(started(r, "handle")) == 2


def test_the_hotline_seven_days_run_from_dispatch_not_from_contact(shipped):
    r = hotline_case(shipped)
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": "general"})  # Monday 09:00
    r.clock.set(at(2026, 3, 10, 10, 0))
    r.act("sign_for", WATER)
    r.clock.set(at(2026, 3, 11, 10, 0))
    r.act("contact_requester", WATER, {"reached": True})
    assert r.case.state == "handling"
    assert local(r.deadline("handle").due_at) == at(2026, 3, 16, 9, 0)  # 7 days after dispatch
    assert len(started(r, "handle")) == 1


def test_a_request_confirmed_complex_gets_fifteen_days_from_dispatch_on_the_same_clock(shipped):
    r = hotline_case(shipped)
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": "general"})
    r.clock.set(at(2026, 3, 11, 10, 0))
    r.act("sign_for", WATER)
    r.act("contact_requester", WATER, {"reached": True, "complex": True})
    handle = r.deadline("handle")
    assert r.case.state == "handling_complex" and handle.state == "handling_complex"
    assert local(handle.due_at) == at(2026, 3, 24, 9, 0) and handle.total == 15 * 86400
    assert local(handle.started_at) == MONDAY_9 and handle.duration == "15d"
    retimed = next(e for e in r.events if e.type == "DeadlineRetimed")
    assert retimed.data["previous_due"] == at(2026, 3, 16, 9, 0).astimezone(handle.due_at.tzinfo).isoformat()
    assert {t.due_at for t in r.pending.values() if t.kind == "breach"} == {handle.due_at}


def test_the_dispatchers_complex_classification_routes_to_the_complex_limit(shipped):
    r = hotline_case(shipped)
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": "complex"})
    r.act("sign_for", WATER)
    r.act("contact_requester", WATER, {"reached": True})
    assert r.case.state == "handling_complex"


def test_a_hotline_rework_round_starts_a_fresh_seven_days(shipped):
    r = hotline_case(shipped)
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": "general"})
    r.act("sign_for", WATER)
    r.act("contact_requester", WATER, {"reached": True})
    r.act("reply", WATER, {"result": "已处理"})
    r.act("call_back", OPERATOR, {"reached": True})
    r.act("rate", OPERATOR, {"rating": "dissatisfied"})
    r.advance(hours=3)
    r.act("order_rework", OPERATOR, {"reason": "未解决"})
    assert r.deadline("handle").started_at == r.clock.now()


def test_continues_in_is_validated_against_the_states():
    text = """\
name: carry
roles: [community_dispatcher]
initial: a
states:
  a:
    timers:
      - name: t
        duration: 4h
        continues_in: [nowhere, done]
  done: {final: true}
actions:
  go: {from: a, to: done, roles: [community_dispatcher]}
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "carry.yaml", calendars=CALENDARS)
    messages = sorted((p.line, p.message) for p in err.value.problems)
    assert {line for line, _ in messages} == {9}
    assert any("unknown state 'nowhere' in continues_in" in m for _, m in messages)
    assert any("final state 'done'" in m for _, m in messages)


# --- 3. catching up after downtime --------------------------------------------------------------

HOURLY = """
name: hourly
roles: [community_dispatcher]
initial: waiting
calendar: 24x7
escalation: {ladder: [community, street]}
states:
  waiting:
    timers:
      - {name: wait, duration: 1h, warn_at: [0.5], repeat: 1h, misfire: %s}
  done: {final: true}
actions:
  finish: {from: waiting, to: done, roles: [community_dispatcher], kind: close}
"""


def test_after_downtime_a_repeating_breach_fires_once_recording_lateness_and_missed_periods(clock):
    r = Runner(Engine(workflow(HOURLY % "coalesce"), CALENDARS), clock)
    r.open(COMMUNITY)
    fired = r.jump_to(MONDAY_9 + timedelta(hours=10, minutes=30))  # down from 09:00 to 19:30
    assert types(fired).count("DeadlineBreached") == 1
    [breach] = [e for e in r.events if e.type == "DeadlineBreached"]
    assert breach.data["missed"] == 9  # 11:00 .. 19:00 were skipped
    assert breach.data["lateness_s"] == 9.5 * 3600
    assert "DeadlineWarned" not in r.types()  # its breach has passed too: nothing to warn about
    assert r.timer("breach").due_at == MONDAY_9 + timedelta(hours=11)  # the first repeat after now


def test_on_time_breaches_miss_nothing(clock):
    r = Runner(Engine(workflow(HOURLY % "coalesce"), CALENDARS), clock)
    r.open(COMMUNITY)
    r.advance(hours=3)  # the runner is up: 10:00, 11:00, 12:00
    breaches = [e.data for e in r.events if e.type == "DeadlineBreached"]
    assert [b["missed"] for b in breaches] == [0, 0, 0] and "DeadlineWarned" in r.types()


def test_fire_all_keeps_firing_every_period_that_fell_due(clock):
    r = Runner(Engine(workflow(HOURLY % "fire_all"), CALENDARS), clock)
    r.open(COMMUNITY)
    r.jump_to(MONDAY_9 + timedelta(hours=10, minutes=30))
    assert r.types().count("DeadlineBreached") == 10 and "DeadlineWarned" in r.types()


def test_the_loader_refuses_an_unknown_misfire_policy():
    with pytest.raises(DefinitionError) as err:
        load_text(HOURLY % "skip_some", "hourly.yaml", calendars=CALENDARS)
    assert any("misfire must be one of coalesce, fire_all" in p.message for p in err.value.problems)


def test_a_grid_event_left_nineteen_days_gets_at_most_one_breach_per_deadline(shipped):
    r = grid_case(shipped)
    r.act("dispatch", COMMUNITY, {"department": "housing"})
    r.jump_to(MONDAY_9 + timedelta(days=19))
    breached = [e.data["deadline"] for e in r.events if e.type == "DeadlineBreached"]
    assert sorted(breached) == ["acknowledge.2", "handle.3"]
    assert all(e.data["missed"] > 0 for e in r.events if e.type == "DeadlineBreached")
    assert "DeadlineWarned" not in r.types()
    assert all(t.due_at > r.clock.now() for t in r.pending.values())


# --- 4. one unit of time for the same rule ------------------------------------------------------


def test_handling_breaches_repeat_in_working_days_in_both_workflows(shipped):
    for name in ("grid_event", "hotline_request"):
        for state in shipped[name].states.values():
            for t in state.timers:
                if t.name == "handle" and t.duration.unit != "hours":  # not the 2h/24h urgent answers
                    assert t.repeat.unit == WORKING_DAYS and t.repeat_calendar == "cn", (name, state.name)


# --- 5. extensions, capped ----------------------------------------------------------------------


def handling(r: Runner) -> Runner:
    r.act("dispatch", COMMUNITY, {"department": "housing"})
    r.act("acknowledge", DEPT)
    return r


def extend(r: Runner, duration: str, reason: str = "需协调物业") -> None:
    r.act("request_extension", DEPT, {"duration": duration, "reason": reason})
    r.act("approve_extension", COMMUNITY)


def test_at_most_two_extensions_are_approved(shipped):
    r = handling(grid_case(shipped))
    extend(r, "1wd")
    extend(r, "1wd")
    assert r.case.data["extensions_approved"] == 2
    with pytest.raises(GuardFailed) as err:
        r.act("request_extension", DEPT, {"duration": "4wh", "reason": "还要"})
    assert err.value.details["guard"] == "extension_within_limits" and "at most 2" in err.value.message


def test_extensions_add_at_most_fifteen_working_days_altogether(shipped):
    r = handling(grid_case(shipped))
    with pytest.raises(GuardFailed) as err:
        r.act("request_extension", DEPT, {"duration": "16wd", "reason": "工程量大"})
    assert err.value.details["guard"] == "extension_within_limits"
    extend(r, "10wd")
    assert r.case.data["extension_total_s"] > 0
    with pytest.raises(GuardFailed):
        r.act("request_extension", DEPT, {"duration": "6wd", "reason": "再延"})
    extend(r, "5wd")  # exactly up to the cap
    assert r.case.data["extensions_approved"] == 2


def test_the_approved_extensions_reason_is_kept_on_the_case_for_the_resident(shipped):
    r = handling(grid_case(shipped))
    r.act("request_extension", DEPT, {"duration": "1wd", "reason": "等待配件到货"})
    assert "extension_reason_for_requester" not in r.case.data
    r.act("approve_extension", COMMUNITY)
    assert r.case.data["extension_reason_for_requester"] == "等待配件到货"


def test_the_hotline_caps_extensions_and_tells_the_requester_why(shipped):
    r = hotline_case(shipped)
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": "general"})
    r.act("sign_for", WATER)
    r.act("contact_requester", WATER, {"reached": True})
    with pytest.raises(GuardFailed):
        r.act("request_extension", WATER, {"duration": "16d", "reason": "x", "reason_for_requester": "y"})
    r.act("request_extension", WATER,
          {"duration": "3d", "reason": "管道更换", "reason_for_requester": "需更换管道"})
    r.act("approve_extension", OPERATOR)
    assert r.case.data["extension_reason_for_requester"] == "需更换管道"
    assert r.case.data["extension_total_s"] == 3 * 86400


def test_limits_are_validated():
    text = """\
name: capped
roles: [community_dispatcher]
initial: a
limits:
  extensions: {max_count: -1, max_total: forever, per_case: 3}
states:
  a: {}
  b: {final: true}
actions:
  go: {from: a, to: b, roles: [community_dispatcher]}
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "capped.yaml", calendars=CALENDARS)
    problems = err.value.problems
    assert {p.line for p in problems} == {5} and len(problems) == 3


# --- 6. 挂起 needs approval and has a ceiling -----------------------------------------------------


def request_suspension(r: Runner) -> None:
    r.act("request_suspension", DEPT, {"reason_code": "resident_unavailable", "reason": "业主出国",
                                       "duration": "10wd"})


def test_a_department_cannot_suspend_on_its_own(shipped):
    r = handling(grid_case(shipped))
    assert "suspend" not in r.engine.definition.actions
    request_suspension(r)
    assert r.case.state == "handling" and r.case.data["suspension_requested"] is True
    with pytest.raises(Exception):
        r.act("approve_suspension", DEPT)  # the department may not approve its own request
    r.act("deny_suspension", COMMUNITY, {"reason": "可先行处置"})
    assert r.case.state == "handling" and "suspension_requested" not in r.case.data
    with pytest.raises(GuardFailed) as err:
        r.act("approve_suspension", COMMUNITY)
    assert err.value.details["guard"] == "suspension_pending"


def test_a_suspension_request_needs_a_reason_from_the_list(shipped):
    r = handling(grid_case(shipped))
    with pytest.raises(PayloadInvalid):
        r.act("request_suspension", DEPT, {"reason_code": "bored", "reason": "x", "duration": "1wd"})


def test_a_suspended_case_shows_as_suspended_with_the_time_its_handling_limit_has_left(shipped):
    r = handling(grid_case(shipped))  # Monday 09:00
    r.advance(hours=2)
    request_suspension(r)
    r.act("approve_suspension", COMMUNITY)
    assert r.case.state == "suspended"
    status = r.engine.sla_status(r.case, r.clock.now() + timedelta(days=3))
    assert status["light"] == "suspended" and status["left_s"] == 14 * 3600
    assert status["deadline"] == r.deadline("handle").id


def test_the_suspension_ceiling_resumes_handling_and_says_so(shipped):
    r = handling(grid_case(shipped))
    request_suspension(r)
    r.act("approve_suspension", COMMUNITY)
    limit = r.deadline("suspension_limit")
    r.advance_to(limit.due_at)
    assert r.case.state == "handling"
    reached = [e for e in r.events if e.type == "SuspensionLimitReached"]
    assert [e.data["deadline"] for e in reached] == [limit.id]
    taken = [e.data for e in r.events if e.type == "ActionTaken"][-1]
    assert (taken["action"], taken["kind"]) == ("resume_at_suspension_limit", "resume")
    handle = r.deadline("handle")
    assert handle.is_running and handle.consumed == 0  # the time left before the pause came back
    assert r.engine.sla_status(r.case, r.clock.now())["light"] != "suspended"


# --- 7. 退单: reasons, counted, reviewed on the second --------------------------------------------


def give_back(r: Runner, unit: Actor = DEPT, code: str = "not_our_duty") -> None:
    r.act("return_case", unit, {"reason_code": code, "reason": "不属于本部门职责"})


def test_a_return_needs_a_reason_from_the_list_and_text(shipped):
    r = handling(grid_case(shipped))
    with pytest.raises(PayloadInvalid):
        r.act("return_case", DEPT, {"reason": "不归我们管"})
    with pytest.raises(PayloadInvalid):
        r.act("return_case", DEPT, {"reason_code": "lazy", "reason": "x"})


def test_after_a_return_the_case_goes_back_to_the_unit_that_dispatched_it(shipped):
    r = grid_case(shipped)
    r.act("refer_to_street", COMMUNITY, {"reason": "跨社区"})
    r.act("dispatch", STREET, {"department": "housing"})
    give_back(r)
    assert r.case.state == "reported" and r.case.holder_unit == "street-1"  # not the grid, not the origin
    assert r.case.data["returns"] == 1 and r.case.data["returned_by"] == "housing"
    assert "ReturnReviewRequested" not in r.types()


def test_the_second_return_goes_to_the_street_which_may_uphold_the_dispatch(shipped):
    r = grid_case(shipped)
    r.act("dispatch", COMMUNITY, {"department": "housing"})
    give_back(r)
    r.act("dispatch", COMMUNITY, {"department": "housing"})
    give_back(r, code="wrong_location")
    assert r.case.state == "return_review" and r.case.data["returns"] == 2
    requested = next(e for e in r.events if e.type == "ReturnReviewRequested")
    assert requested.data == {"unit": "housing", "count": 2}
    r.act("uphold_dispatch", STREET, {"reason": "属于住建职责"})
    assert r.case.state == "dispatched" and r.case.holder_unit == "housing"
    reviewed = next(e for e in r.events if e.type == "ReturnReviewed")
    assert reviewed.data == {"unit": "housing", "upheld": True}
    assert next(e for e in r.events if e.type == "ImproperReturnRecorded").data == {"unit": "housing"}


def test_the_street_may_accept_the_return_and_triage_it_itself(shipped):
    r = grid_case(shipped)
    r.act("dispatch", COMMUNITY, {"department": "housing"})
    give_back(r)
    r.act("dispatch", COMMUNITY, {"department": "greening"})
    give_back(r, unit=OTHER_DEPT)
    r.act("accept_return", STREET, {"reason": "确属误派"})
    assert r.case.state == "street_triage"
    reviewed = next(e for e in r.events if e.type == "ReturnReviewed")
    assert reviewed.data == {"unit": "greening", "upheld": False}
    assert "ImproperReturnRecorded" not in r.types()
    r.act("dispatch", STREET, {"department": "urban-management"})
    give_back(r, unit=Actor("um-1", "department_handler", "urban-management"))
    assert r.case.state == "return_review"  # a third return is reviewed too: returns have no free ride


def test_the_hotline_reviews_a_second_return_at_the_centre_and_keeps_the_urgency_route(shipped):
    r = hotline_case(shipped)
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": "utilities"})
    r.act("return_case", WATER, {"reason_code": "not_our_duty", "reason": "是供电问题"})
    assert r.case.state == "accepted" and r.case.holder_unit == "hotline-centre"
    r.act("dispatch", OPERATOR, {"unit": "power-company", "urgency": "utilities"})
    r.act("return_case", POWER, {"reason_code": "not_our_duty", "reason": "是供水问题"})
    assert r.case.state == "return_review"
    r.act("uphold_dispatch", OPERATOR, {"reason": "电表箱故障属供电"})
    assert r.case.state == "utility_response" and r.case.holder_unit == "power-company"
    assert [e.data["unit"] for e in r.events if e.type == "ImproperReturnRecorded"] == ["power-company"]


# --- data-aware routes and set from case data -----------------------------------------------------


def test_a_route_may_compare_case_data():
    route = Route("data.returns", (1,), "return_review", "gte")
    assert not route.holds({}, {}) and route.holds({}, {"returns": 1}) and route.holds(None, {"returns": 3})
    assert Route("data.urgency", ("complex",), "x").holds({"urgency": "complex"}, {}) is False
    assert Route("urgency", ("complex",), "x").holds({"urgency": "complex"}, {}) is True


def test_route_comparisons_are_validated():
    text = """\
name: routed
roles: [community_dispatcher]
initial: a
states:
  a: {}
  b: {final: true}
  c: {final: true}
actions:
  go:
    from: a
    to: b
    roles: [community_dispatcher]
    routes:
      - when: {data.returns: {about: 1}}
        to: c
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "routed.yaml", calendars=CALENDARS)
    [p] = err.value.problems
    assert p.line == 14 and "route comparison" in p.message


def test_count_increments_a_case_data_counter(clock):
    defn = workflow("""
name: counting
roles: [community_dispatcher]
initial: a
states: {a: {}, b: {final: true}}
actions:
  poke: {from: a, roles: [community_dispatcher], count: [pokes], set: {last: $data.pokes}}
  stop: {from: a, to: b, roles: [community_dispatcher]}
""")
    r = Runner(Engine(defn, CALENDARS), clock)
    r.open(COMMUNITY)
    r.act("poke", COMMUNITY)
    r.act("poke", COMMUNITY)
    assert r.case.data["pokes"] == 2 and r.case.data["last"] == 1  # set reads the data as it stood


def test_the_diagram_says_where_a_limit_runs_on_and_shows_route_comparisons(shipped):
    from gridflow.engine.diagram import to_mermaid

    text = to_mermaid(shipped["grid_event"], "en")
    dispatched = text.split("    note right of dispatched\n", 1)[1].split("    end note", 1)[0]
    assert "runs on into Being handled" in dispatched
    assert "dispatched --> return_review : Return misrouted case (data.returns≥1)" in text


def test_a_working_day_repeat_of_a_calendar_day_limit_counts_on_the_holders_own_calendar(shipped, tmp_path):
    from gridflow.engine import default_registry
    from gridflow.engine.unit_calendars import install_unit_calendars, load_unit_calendars

    path = tmp_path / "units.yaml"
    path.write_text("calendars:\n  water-7x24:\n    base: cn\n    hours: ['00:00-24:00']\n    weekend: []\n"
                    "    public_holidays: worked\n    units: [water-company]\n", encoding="utf-8")
    registry = default_registry()
    install_unit_calendars(registry, load_unit_calendars(path, registry))
    r = Runner(Engine(shipped["hotline_request"], registry), ManualClock(MONDAY_9))
    r.open(OPERATOR, origin_unit="community-1")
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": "general"})
    r.act("sign_for", WATER)
    r.act("contact_requester", WATER, {"reached": True})
    due = r.deadline("handle").due_at
    r.advance_to(due)
    desk = registry.resolve("cn", "water-company")
    assert desk.name == "water-7x24"
    # 5 working days of the water company's 7x24 desk, not of the ordinary office calendar
    assert r.timer("breach", "handle").due_at == desk.add_working_days(due, 5)
    assert r.timer("breach", "handle").due_at != registry.get("cn").add_working_days(due, 5)
