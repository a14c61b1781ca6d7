"""Supervision orders, reminders, notices and co-handling parts through the service, on SQLite and
PostgreSQL: what is stored (events, columns, timers), who sees the case and who may act on it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gridflow.engine.case import Actor
from gridflow.engine.errors import CaseNotFound, GuardFailed, PayloadInvalid
from gridflow.processes.runners import InlineTimerRunner
from gridflow.service.actions import act_as
from gridflow.service.auth import Caller
from tests.integration.helpers import DISPATCHER, HOUSING, act, report, snapshot

COMMUNITY_CALLER = Caller("cd-1", "community_dispatcher", DISPATCHER.unit)
LEAD = Caller("dh-housing", "department_handler", "dept-housing")
WATER = Caller("dh-water", "department_handler", "dept-water")
URBAN = Caller("dh-urban", "department_handler", "dept-urban")
STREET = Caller("sd-1", "street_dispatcher", "370602001")


def _types(svc, number: str) -> list[str]:
    return [e.type for e in snapshot(svc, number)[1]]


def _co_dispatched(svc, co=("dept-water", "dept-urban")) -> str:
    number = report(svc).number
    act_as(svc, COMMUNITY_CALLER, number, "dispatch", {"department": "dept-housing", "co_handlers": list(co)})
    return number


def test_co_handlers_get_parts_stored_in_the_case_and_the_co_units_column(app):
    number = _co_dispatched(app.services)
    row, events, timers = snapshot(app.services, number)
    assert row.holder_unit == "dept-housing"
    assert row.co_units == ",dept-urban,dept-water,"
    assert [e.data["unit"] for e in events if e.type == "CoHandlingOpened"] == ["dept-water", "dept-urban"]
    assert {t.deadline_id.split(".")[0] for t in timers} >= {"co_sign", "co_answer", "acknowledge"}
    assert row.sla["data"]["parts"]["dept-water"]["status"] == "dispatched"


def test_a_co_handler_sees_the_case_while_its_part_is_open_and_works_it(app):
    svc = app.services
    number = _co_dispatched(svc)
    act_as(svc, WATER, number, "sign_part")
    act_as(svc, WATER, number, "answer_part", {"answer": "供水管网已检修"})
    row, events, _ = snapshot(svc, number)
    assert row.co_units == ",dept-urban,"
    answered = [e.data for e in events if e.type == "CoHandlingAnswered"]
    assert answered == [{"unit": "dept-water", "on_time": True}]
    with pytest.raises(CaseNotFound):  # answered: no longer its case
        act_as(svc, WATER, number, "consult", {"participants": ["dept-water"], "summary": "x"})
    with pytest.raises(CaseNotFound):  # never named: never its case
        act_as(svc, Caller("dh-police", "department_handler", "dept-police"), number, "sign_part")


def test_the_lead_reply_waits_for_the_parts_and_a_refusal_writes_nothing(app):
    svc = app.services
    number = _co_dispatched(svc)
    act_as(svc, LEAD, number, "acknowledge")
    before = snapshot(svc, number)[0].version
    with pytest.raises(GuardFailed, match="still open: dept-urban, dept-water"):
        act_as(svc, LEAD, number, "reply", {"result": "已修复"})
    assert snapshot(svc, number)[0].version == before
    act_as(svc, WATER, number, "sign_part")
    act_as(svc, WATER, number, "answer_part", {"answer": "已处理"})
    act_as(svc, COMMUNITY_CALLER, number, "close_part", {"unit": "dept-urban", "reason": "无需城管协办"})
    act_as(svc, LEAD, number, "reply", {"result": "已修复"})
    row = snapshot(svc, number)[0]
    assert row.state == "awaiting_feedback" and row.co_units == ""


def test_unknown_or_out_of_reach_co_handlers_are_refused_naming_the_field(app):
    svc = app.services
    number = report(svc).number
    with pytest.raises(PayloadInvalid) as err:
        act_as(svc, COMMUNITY_CALLER, number, "dispatch",
               {"department": "dept-housing", "co_handlers": ["dept-water", "dept-nowhere", "370602002001"]})
    assert set(err.value.details["fields"]) == {"co_handlers"}
    assert "dept-nowhere" in err.value.details["fields"]["co_handlers"]
    assert "370602002001" in err.value.details["fields"]["co_handlers"]  # another street's community
    assert snapshot(svc, number)[0].state == "reported"  # nothing written


def test_a_consultation_names_reachable_participants(app):
    svc = app.services
    number = _co_dispatched(svc)
    act_as(svc, COMMUNITY_CALLER, number, "consult",
           {"participants": ["dept-housing", "dept-water"], "summary": "明确各自分工"})
    held = [e.data for e in snapshot(svc, number)[1] if e.type == "ConsultationHeld"]
    assert held == [{"participants": ["dept-housing", "dept-water"], "summary": "明确各自分工"}]


def test_a_supervision_order_is_issued_by_the_street_and_answered_by_the_holder(app):
    svc = app.services
    number = _co_dispatched(svc, co=())
    act_as(svc, STREET, number, "supervise", {"level": "key", "instructions": "今日内签收"})
    row, events, timers = snapshot(svc, number)
    assert row.supervised
    issued = next(e for e in events if e.type == "SupervisionOrderIssued")
    assert issued.data["unit"] == "dept-housing" and issued.data["level"] == "key"
    assert any(t.deadline_id.startswith("supervision_key.") for t in timers)
    with pytest.raises(GuardFailed, match="addressed to unit dept-housing"):
        act(svc, number, "reply_supervision_order", Actor("x", "community_dispatcher", DISPATCHER.unit),
            {"reply": "不是我们"})
    act_as(svc, LEAD, number, "reply_supervision_order", {"reply": "已安排人员"})
    row, events, timers = snapshot(svc, number)
    answered = next(e for e in events if e.type == "SupervisionOrderAnswered")
    assert answered.data == {"order": "SO-1", "unit": "dept-housing", "on_time": True}
    assert not any(t.deadline_id.startswith("supervision_key.") for t in timers)


def test_a_breach_is_followed_by_a_stored_reminder_and_then_a_criticism_notice(app, clock):
    svc = app.services
    number = report(svc).number
    act(svc, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    runner = InlineTimerRunner(svc)

    def move_to(kind: str) -> None:
        timers = snapshot(svc, number)[2]
        due = next(t.due_at for t in timers if t.kind == kind and t.deadline_id.startswith("acknowledge."))
        clock.set(due + timedelta(seconds=1))
        runner.run_due()

    move_to("breach")
    assert "DeadlineBreached" in _types(svc, number) and "ReminderIssued" not in _types(svc, number)
    move_to("reminder")
    reminded = [e for e in snapshot(svc, number)[1] if e.type == "ReminderIssued"]
    assert {e.data["unit"] for e in reminded} == {"dept-housing"}
    move_to("notice")
    noticed = [e for e in snapshot(svc, number)[1] if e.type == "CriticismNoticeIssued"]
    assert "acknowledge" in [e.data["timer"] for e in noticed]
    # The handling limit (counted from dispatch) is reminded too; the sign-for limit once only.
    assert len([e for e in snapshot(svc, number)[1]
                if e.type == "ReminderIssued" and e.data["timer"] == "acknowledge"]) == 1


def test_a_reminder_of_a_case_that_moved_on_is_stale(app, clock):
    svc = app.services
    number = report(svc).number
    act(svc, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    breach = next(t for t in snapshot(svc, number)[2] if t.kind == "breach")
    clock.set(breach.due_at + timedelta(seconds=1))
    InlineTimerRunner(svc).run_due()
    reminder = next(t for t in snapshot(svc, number)[2] if t.kind == "reminder")
    act(svc, number, "acknowledge", HOUSING)
    clock.set(reminder.due_at + timedelta(seconds=1))
    InlineTimerRunner(svc).run_due()
    assert "ReminderIssued" not in _types(svc, number)


def test_the_co_units_scope_term_matches_whole_codes_in_sql_and_in_python(app):
    from sqlmodel import select

    from gridflow.adapters.orm import CaseRow
    from gridflow.service.scopes import Scope

    svc = app.services
    number = _co_dispatched(svc, co=("dept-water",))
    scope = Scope(terms=(("co_units", frozenset({"dept-water"})),))
    assert scope.contains({"co_units": ",dept-urban,dept-water,"})
    assert not scope.contains({"co_units": ",dept-water2,"}) and not scope.contains({"co_units": ""})
    near = Scope(terms=(("co_units", frozenset({"dept_water", "dept-wat"})),))  # _ is no LIKE wildcard
    with svc.uow(write=False) as uow:
        assert uow.session.exec(select(CaseRow.number).where(scope.sql())).all() == [number]
        assert uow.session.exec(select(CaseRow.number).where(near.sql())).all() == []
