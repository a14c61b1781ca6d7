"""Lead and co-handling departments (主办/协办) on grid_event v3 and hotline_request v3.

Dispatch names a lead (the department) and co-handlers; each co-handler signs for and answers its own
part within its own case-level deadlines (1 and 3 working days from dispatch); the lead's reply waits.
"""

from __future__ import annotations

import pytest

from gridflow.engine import Actor, Engine, GuardFailed, ManualClock, PayloadInvalid
from gridflow.engine.definition import CASE_LEVEL

from tests.unit.helpers import CALENDARS, COMMUNITY, DEPT, MONDAY_9, STREET, Runner, at, local

DRAINAGE = Actor("dh-drain", "department_handler", "drainage")
WATER = Actor("dh-water", "department_handler", "water")
OPERATOR = Actor("op-1", "hotline_operator", "hotline-centre")


def co_dispatched(run: Runner, co=("drainage", "water")) -> Runner:
    run.advance(hours=1)
    run.act("dispatch", COMMUNITY, {"department": "housing", "co_handlers": list(co)})  # Monday 10:00
    return run


def events(run: Runner, type_: str) -> list:
    return [e for e in run.events if e.type == type_]


def parts(run: Runner) -> dict:
    return run.case.data.get("parts", {})


def test_dispatch_opens_a_part_for_each_co_handler_with_its_own_deadlines(run):
    co_dispatched(run, co=("drainage", "water", "housing", "drainage"))  # the lead and a repeat are dropped
    assert run.case.holder_unit == "housing"
    assert sorted(parts(run)) == ["drainage", "water"]
    assert {p["status"] for p in parts(run).values()} == {"dispatched"}
    opened = events(run, "CoHandlingOpened")
    assert [e.data["unit"] for e in opened] == ["drainage", "water"]
    assert {e.data["part_role"] for e in opened} == {"co"}
    case_level = [d for d in run.case.deadlines if d.state == CASE_LEVEL]
    assert sorted(d.timer for d in case_level) == ["co_answer", "co_answer", "co_sign", "co_sign"]
    sign = run.case.deadline(parts(run)["drainage"]["sign_deadline"])
    answer = run.case.deadline(parts(run)["drainage"]["answer_deadline"])
    assert local(sign.due_at) == at(2026, 3, 10, 17, 30) and local(answer.due_at) == at(2026, 3, 12, 17, 30)
    assert opened[0].data["due_at"] == answer.due_at.isoformat()
    notified = [n.unit for n in run.decisions[-1].notifications if n.kind == "co_handling"]
    assert notified == ["drainage", "water"]


def test_a_dispatch_without_co_handlers_opens_no_part(run):
    run.act("dispatch", COMMUNITY, {"department": "housing"})
    assert "parts" not in run.case.data and not events(run, "CoHandlingOpened")


def test_a_co_handler_signs_for_then_answers_its_part_and_the_lead_replies_after_both(run):
    co_dispatched(run)
    run.act("acknowledge", DEPT)
    assert run.case.state == "handling" and len([d for d in run.case.deadlines if d.state == CASE_LEVEL]) == 4
    run.act("sign_part", DRAINAGE)
    assert events(run, "CoHandlingSignedFor")[0].data == {"unit": "drainage", "on_time": True}
    assert parts(run)["drainage"]["status"] == "signed"
    run.act("answer_part", DRAINAGE, {"answer": "管网已疏通"})
    assert events(run, "CoHandlingAnswered")[0].data == {"unit": "drainage", "on_time": True}
    with pytest.raises(GuardFailed, match="co-handling parts still open: water") as err:
        run.act("reply", DEPT, {"result": "已修复"})
    assert err.value.details["guard"] == "parts_settled"
    run.act("sign_part", WATER)
    with pytest.raises(GuardFailed, match="still open: water"):
        run.act("reply", DEPT, {"result": "已修复"})
    run.act("answer_part", WATER, {"answer": "供水已恢复"})
    run.act("reply", DEPT, {"result": "已修复"})
    assert run.case.state == "awaiting_feedback"
    assert not [d for d in run.case.deadlines if d.state == CASE_LEVEL]
    assert run.case.state == "awaiting_feedback"


def test_the_lead_reply_names_every_open_part(run):
    co_dispatched(run)
    run.act("acknowledge", DEPT)
    with pytest.raises(GuardFailed, match="still open: drainage, water"):
        run.act("reply", DEPT, {"result": "已修复"})


def test_a_dispatcher_closes_a_part_and_the_lead_may_reply(run):
    co_dispatched(run)
    run.act("acknowledge", DEPT)
    run.act("sign_part", DRAINAGE)
    run.act("answer_part", DRAINAGE, {"answer": "已处理"})
    run.act("close_part", COMMUNITY, {"unit": "water", "reason": "经核实无需供水部门协办"})
    closed = events(run, "CoHandlingClosed")
    assert closed[0].data == {"unit": "water", "by_unit": "community-1", "reason": "经核实无需供水部门协办"}
    assert parts(run)["water"]["status"] == "closed"
    run.act("reply", DEPT, {"result": "已修复"})


def test_a_part_must_be_signed_for_before_it_is_answered_and_only_once(run):
    co_dispatched(run)
    with pytest.raises(GuardFailed, match="sign for it first"):
        run.act("answer_part", DRAINAGE, {"answer": "已处理"})
    run.act("sign_part", DRAINAGE)
    with pytest.raises(GuardFailed, match="is signed; only a dispatched part"):
        run.act("sign_part", DRAINAGE)


def test_a_unit_without_a_part_can_neither_sign_nor_be_closed(run):
    co_dispatched(run, co=("drainage",))
    with pytest.raises(GuardFailed, match="unit water has no co-handling part"):
        run.act("sign_part", WATER)
    with pytest.raises(GuardFailed, match="unit water has no open co-handling part"):
        run.act("close_part", COMMUNITY, {"unit": "water", "reason": "x"})
    with pytest.raises(GuardFailed, match="no co-handling part"):
        run.act("sign_part", DEPT)  # the lead has no part of its own


def test_parts_survive_the_lead_suspension_and_count_from_dispatch(run):
    co_dispatched(run)
    run.act("acknowledge", DEPT)
    run.act("request_suspension", DEPT, {"reason_code": "resident_unavailable", "reason": "等待业主",
                                         "duration": "5wd"})
    run.act("approve_suspension", COMMUNITY)
    assert all(d.is_running for d in run.case.deadlines if d.state == CASE_LEVEL)
    run.advance_to(at(2026, 3, 11, 9, 0))  # past the sign-for limit (Tuesday 17:30)
    late = [e for e in events(run, "DeadlineBreached") if e.data["timer"] == "co_sign"]
    assert len(late) == 2
    run.act("sign_part", DRAINAGE)
    assert events(run, "CoHandlingSignedFor")[0].data["on_time"] is False


def test_a_late_part_is_reminded_to_its_own_unit(run):
    co_dispatched(run, co=("drainage",))
    run.advance_to(at(2026, 3, 11, 17, 30))  # the next working day after the sign-for breach
    reminders = {e.data["timer"]: e.data["unit"] for e in events(run, "ReminderIssued")}
    assert reminders == {"co_sign": "drainage", "acknowledge": "housing"}  # the lead's own sign-for, too
    notified = [n.unit for d in run.decisions[-2:] for n in d.notifications if n.kind == "reminded"]
    assert sorted(notified) == ["drainage", "housing"]


def test_closing_the_case_closes_the_open_parts(run):
    co_dispatched(run, co=("drainage",))
    run.act("acknowledge", DEPT)
    run.act("park", STREET, {"reason": "列入明年计划"})
    assert run.case.is_closed
    closed = events(run, "CoHandlingClosed")
    assert closed[0].data["unit"] == "drainage" and closed[0].data["reason"] == "case closed"
    assert run.case.deadlines == () and run.pending == {}


def test_a_consultation_is_recorded_with_its_participants(run):
    co_dispatched(run)
    run.act("consult", COMMUNITY, {"participants": ["housing", "drainage", "water"], "summary": "明确分工"})
    (held,) = events(run, "ConsultationHeld")
    assert held.data == {"participants": ["housing", "drainage", "water"], "summary": "明确分工"}
    assert run.case.state == "dispatched"


def test_units_fields_take_lists_of_codes(run):
    run.advance(hours=1)
    with pytest.raises(PayloadInvalid, match="co_handlers must be a list of unit codes") as err:
        run.act("dispatch", COMMUNITY, {"department": "housing", "co_handlers": "drainage"})
    assert "co_handlers" in err.value.details["fields"]
    with pytest.raises(PayloadInvalid, match="co_handlers"):
        run.act("dispatch", COMMUNITY, {"department": "housing", "co_handlers": ["", 3]})


def test_the_hotline_takes_co_handlers_too(shipped):
    r = Runner(Engine(shipped["hotline_request"], CALENDARS), ManualClock(MONDAY_9))
    r.open(OPERATOR, origin_unit="community-1")
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": "urgent", "co_handlers": ["drainage"]})
    with pytest.raises(GuardFailed, match="still open: drainage"):
        r.act("reply", Actor("wc-1", "department_handler", "water-company"), {"result": "已抢修"})
    r.act("sign_part", DRAINAGE)
    r.act("answer_part", DRAINAGE, {"answer": "配合完成"})
    r.act("reply", Actor("wc-1", "department_handler", "water-company"), {"result": "已抢修"})
    assert r.case.state == "awaiting_callback"


def test_a_late_co_handler_does_not_make_the_lead_too_late_to_ask_for_more_time(run):
    co_dispatched(run, co=("drainage",))
    run.act("acknowledge", DEPT)  # handle: 16 working hours from Monday 10:00, due Wednesday 11:00
    run.advance_to(at(2026, 3, 11, 9, 0))  # the co-handler's sign-for limit passed on Tuesday
    assert any(e.data["timer"] == "co_sign" for e in events(run, "DeadlineBreached"))
    run.act("request_extension", DEPT, {"duration": "8wh", "reason": "等待协办部门"})
    assert run.case.data["extension_requested"] is True


def test_a_part_runs_on_the_co_handler_own_unit_calendar(shipped, tmp_path):
    from gridflow.engine import default_registry
    from gridflow.engine.unit_calendars import install_unit_calendars, load_unit_calendars

    path = tmp_path / "units.yaml"
    path.write_text("""calendars:
  water-7x24: {base: cn, hours: ["00:00-24:00"], weekend: [], public_holidays: worked, units: [water]}
""", encoding="utf-8")
    registry = default_registry()
    install_unit_calendars(registry, load_unit_calendars(path, registry))
    run = Runner(Engine(shipped["grid_event"], registry), ManualClock(MONDAY_9))
    run.open(COMMUNITY, origin_unit="community-1")
    co_dispatched(run, co=("water", "drainage"))
    water = run.case.deadline(parts(run)["water"]["sign_deadline"])
    drainage = run.case.deadline(parts(run)["drainage"]["sign_deadline"])
    assert water.calendar == "water-7x24" and drainage.calendar == "cn"
    assert run.case.deadline(parts(run)["water"]["answer_deadline"]).calendar == "water-7x24"
    assert run.deadline("acknowledge").calendar == "cn"  # the lead keeps its own
