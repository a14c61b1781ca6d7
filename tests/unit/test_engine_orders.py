"""Supervision as orders (督办单), reminders (催办) and criticism notices (通报批评), on grid_event v3.

Times are Shanghai wall-clock times in a quiet week (Monday 2026-03-09 onwards); office hours are
08:30-12:00 and 13:30-17:30.
"""

from __future__ import annotations

import pytest

from gridflow.engine import Actor, DefinitionError, Engine, GuardFailed, ManualClock, TimerSpec
from gridflow.engine.definition import CASE_LEVEL

from tests.unit.helpers import (
    CALENDARS, COMMUNITY, DEPT, MONDAY_9, STREET, SUPERVISOR, Runner, at, local, workflow,
)

OTHER_DEPT = Actor("dept-2", "department_handler", "drainage")


def handling(run: Runner) -> Runner:
    run.advance(hours=1)
    run.act("dispatch", COMMUNITY, {"department": "housing"})  # Monday 10:00
    run.act("acknowledge", DEPT)
    return run


def events(run: Runner, type_: str) -> list:
    return [e for e in run.events if e.type == type_]


# --- issuing ----------------------------------------------------------------------------------


def test_supervise_issues_an_order_to_the_holder_with_the_reply_limit_of_its_level(run):
    handling(run)
    run.act("supervise", SUPERVISOR, {"level": "key", "instructions": "限期一个工作日内答复"})
    (issued,) = events(run, "SupervisionOrderIssued")
    assert issued.data["order"] == "SO-1" and issued.data["level"] == "key"
    assert issued.data["unit"] == "housing" and issued.data["instructions"] == "限期一个工作日内答复"
    assert run.case.supervised and "CaseSupervised" in run.types()
    d = run.deadline("supervision_key")
    assert d.state == CASE_LEVEL and d.is_running
    assert local(d.due_at) == at(2026, 3, 10, 17, 30)  # 1 working day (重点督办): the close of Tuesday
    assert issued.data["due_at"] == d.due_at.isoformat()
    assert run.case.data["orders"]["SO-1"]["status"] == "open"


def test_a_general_order_gives_three_working_days_and_level_defaults_to_general(run):
    handling(run)
    run.act("supervise", SUPERVISOR, {"instructions": "请尽快办理"})
    assert events(run, "SupervisionOrderIssued")[0].data["level"] == "general"
    assert local(run.deadline("supervision_general").due_at) == at(2026, 3, 12, 17, 30)


def test_instructions_are_required_and_street_and_district_may_supervise(run):
    handling(run)
    with pytest.raises(Exception, match="instructions is required"):
        run.act("supervise", SUPERVISOR, {"level": "general"})
    run.act("supervise", STREET, {"instructions": "街道督办"})
    run.act("supervise", Actor("dd-1", "district_dispatcher", "district-1"), {"instructions": "区督办"})
    assert [e.data["order"] for e in events(run, "SupervisionOrderIssued")] == ["SO-1", "SO-2"]


def test_an_order_survives_state_moves_and_is_not_paused_by_suspension(run):
    handling(run)
    run.act("supervise", SUPERVISOR, {"instructions": "督办"})
    run.act("request_suspension", DEPT, {"reason_code": "resident_unavailable", "reason": "等待业主",
                                         "duration": "5wd"})
    run.act("approve_suspension", COMMUNITY)
    d = run.deadline("supervision_general")
    assert run.case.state == "suspended" and d.is_running and d.generation == 1
    run.act("resume", DEPT)
    assert run.deadline("supervision_general") == d


# --- answering --------------------------------------------------------------------------------


def test_the_holder_answers_its_order_on_time(run):
    handling(run)
    run.act("supervise", SUPERVISOR, {"instructions": "督办"})
    run.advance(hours=2)
    run.act("reply_supervision_order", DEPT, {"reply": "已安排维修，本周完成"})
    (answered,) = events(run, "SupervisionOrderAnswered")
    assert answered.data == {"order": "SO-1", "unit": "housing", "on_time": True}
    assert not [d for d in run.case.deadlines if d.state == CASE_LEVEL]
    assert run.case.data["orders"]["SO-1"]["status"] == "answered"
    assert run.case.state == "handling"  # answering an order moves nothing


def test_an_order_addressed_to_another_unit_cannot_be_answered_by_it(run):
    handling(run)
    run.act("supervise", SUPERVISOR, {"instructions": "督办"})
    with pytest.raises(GuardFailed, match="addressed to unit housing"):
        run.act("reply_supervision_order", OTHER_DEPT, {"reply": "不是我们的"})


def test_with_several_open_orders_the_reply_names_the_order(run):
    handling(run)
    run.act("supervise", SUPERVISOR, {"instructions": "第一次"})
    run.act("supervise", SUPERVISOR, {"instructions": "第二次", "level": "key"})
    with pytest.raises(GuardFailed, match="several supervision orders are open"):
        run.act("reply_supervision_order", DEPT, {"reply": "答复"})
    run.act("reply_supervision_order", DEPT, {"order": "SO-2", "reply": "答复"})
    assert run.case.data["orders"]["SO-1"]["status"] == "open"
    with pytest.raises(GuardFailed, match="no open supervision order 'SO-2'"):
        run.act("reply_supervision_order", DEPT, {"order": "SO-2", "reply": "再答复"})
    run.act("reply_supervision_order", DEPT, {"reply": "答复第一张"})  # the only one open now
    assert [e.data["order"] for e in events(run, "SupervisionOrderAnswered")] == ["SO-2", "SO-1"]


def test_no_order_no_reply(run):
    handling(run)
    with pytest.raises(GuardFailed, match="no supervision order is open"):
        run.act("reply_supervision_order", DEPT, {"reply": "答复"})


# --- overdue ----------------------------------------------------------------------------------


def test_an_unanswered_order_is_overdue_escalates_and_a_late_answer_is_not_on_time(run):
    handling(run)
    run.act("supervise", SUPERVISOR, {"level": "key", "instructions": "督办"})
    level = run.case.escalation_level
    run.advance_to(at(2026, 3, 10, 17, 30))
    breach = [e for e in events(run, "DeadlineBreached") if e.data["timer"] == "supervision_key"]
    assert len(breach) == 1
    assert [e.data for e in events(run, "SupervisionOrderOverdue")] == [{"order": "SO-1", "unit": "housing"}]
    assert run.case.escalation_level == level + 1
    run.act("reply_supervision_order", DEPT, {"reply": "迟到的答复"})
    assert events(run, "SupervisionOrderAnswered")[0].data["on_time"] is False


def test_a_breach_that_supervises_issues_a_general_order_by_the_system_once(run):
    handling(run)  # handle: 16 working hours from Monday 10:00, due Wednesday 11:00
    run.advance_to(at(2026, 3, 11, 11, 0))
    (issued,) = events(run, "SupervisionOrderIssued")
    assert issued.actor == "system" and issued.data["level"] == "general" and issued.data["unit"] == "housing"
    assert run.case.data["orders"]["SO-1"]["source"].startswith("handle.")


# --- reminders and notices --------------------------------------------------------------------


def test_a_breach_is_followed_by_a_reminder_the_next_working_day_and_a_notice_five_working_days_later(run):
    run.advance(hours=1)
    run.act("dispatch", COMMUNITY, {"department": "housing"})  # Monday 10:00; sign for by Tuesday 17:30
    run.advance_to(at(2026, 3, 10, 17, 30))
    assert [e.data["timer"] for e in events(run, "DeadlineBreached")] == ["acknowledge"]
    assert not events(run, "ReminderIssued")
    reminder = run.timer("reminder", "acknowledge.")
    assert local(reminder.due_at) == at(2026, 3, 11, 17, 30)  # the next working day
    run.advance_to(at(2026, 3, 11, 17, 30))
    # The handling limit counts from dispatch too (due Wednesday 10:00): it has a reminder of its own.
    (reminded,) = [e for e in events(run, "ReminderIssued") if e.data["timer"] == "acknowledge"]
    assert reminded.data == {"deadline": reminder.deadline_id, "timer": "acknowledge", "unit": "housing"}
    assert "reminded" in [n.kind for n in run.decisions[-1].notifications]
    notice = run.timer("notice", "acknowledge.")
    assert local(notice.due_at) == at(2026, 3, 18, 17, 30)  # 5 working days after the reminder
    def of_ack(type_):
        return [e for e in events(run, type_) if e.data["timer"] == "acknowledge"]

    run.advance_to(at(2026, 3, 18, 17, 0))
    assert not of_ack("CriticismNoticeIssued")
    run.advance_to(at(2026, 3, 18, 17, 30))
    (notice_event,) = of_ack("CriticismNoticeIssued")
    run.advance_to(at(2026, 3, 31, 17, 30))  # repeat breaches meanwhile: still one reminder, one notice
    assert len(of_ack("ReminderIssued")) == 1 and len(of_ack("CriticismNoticeIssued")) == 1
    assert notice_event.data == {"deadline": reminder.deadline_id, "timer": "acknowledge", "unit": "housing"}


def test_a_reminder_is_stale_once_the_case_moved_on(run):
    run.advance(hours=1)
    run.act("dispatch", COMMUNITY, {"department": "housing"})
    run.advance_to(at(2026, 3, 10, 17, 30))
    reminder = run.timer("reminder", "acknowledge.")
    run.act("acknowledge", DEPT)  # signed for late, before the reminder
    assert reminder.key not in run.pending
    assert run.engine.fire(run.case, reminder, at(2026, 3, 11, 17, 30)).events == ()


def test_a_notice_is_stale_when_the_deadline_stopped_after_the_reminder(run):
    run.advance(hours=1)
    run.act("dispatch", COMMUNITY, {"department": "housing"})
    run.advance_to(at(2026, 3, 11, 17, 30))
    notice = run.timer("notice", "acknowledge.")
    run.act("acknowledge", DEPT)
    assert run.engine.fire(run.case, notice, at(2026, 3, 18, 17, 30)).events == ()
    assert not events(run, "CriticismNoticeIssued")


def test_a_reminder_fired_twice_says_nothing_the_second_time(run):
    run.advance(hours=1)
    run.act("dispatch", COMMUNITY, {"department": "housing"})
    run.advance_to(at(2026, 3, 10, 17, 30))
    reminder = run.timer("reminder", "acknowledge.")
    run.advance_to(at(2026, 3, 11, 17, 30))
    assert run.engine.fire(run.case, reminder, at(2026, 3, 11, 18, 0)).events == ()


def test_a_timer_that_neither_escalates_nor_supervises_is_not_reminded(run):
    run.advance(hours=1)
    run.act("handle_locally", COMMUNITY, {"result": "已处理"})  # rating: breach takes the default action
    run.advance_to(at(2026, 3, 20, 10, 0))
    # The rating limit breached (then the review limit, which escalates: that one is reminded).
    assert [e for e in events(run, "DeadlineBreached") if e.data["timer"] == "rate"]
    assert not [e for e in events(run, "ReminderIssued") if e.data["timer"] == "rate"]


def test_reminder_keys_parse_back(run):
    t = TimerSpec("acknowledge.2", "reminder", 1, 3, MONDAY_9)
    assert TimerSpec.parse_key(t.key, t.due_at) == t


def test_closing_the_case_stops_its_order_deadlines(run):
    run.act("supervise", SUPERVISOR, {"instructions": "督办"})
    run.act("reject", COMMUNITY, {"reason": "不属实"})
    stopped = [e.data for e in events(run, "DeadlineStopped") if e.data["timer"] == "supervision_general"]
    assert stopped and stopped[0]["reason"] == "case_closed"
    assert run.case.deadlines == () and run.pending == {}
    assert run.case.data["orders"]["SO-1"]["status"] == "closed"


# --- workflows without a supervision section: one rule for reminders --------------------------

PLAIN = """
name: plain
version: 1
roles: [community_dispatcher, supervisor]
initial: open
states:
  open:
    holder: community_dispatcher
    timers:
      - {name: work, duration: 4wh, on_breach: {escalate: true}}
  done: {final: true, outcome: resolved}
actions:
  finish: {from: open, to: done, roles: [community_dispatcher]}
  supervise: {from: open, roles: [supervisor], supervise: true}
"""


def test_a_workflow_without_levels_only_flags_but_is_reminded_by_the_default_rule():
    defn = workflow(PLAIN)
    assert defn.supervision.levels == {} and str(defn.supervision.reminder_after) == "1wd"
    run = Runner(Engine(defn, CALENDARS), ManualClock(MONDAY_9))
    run.open(COMMUNITY, origin_unit="community-1")
    run.act("supervise", SUPERVISOR)
    assert run.case.supervised and not events(run, "SupervisionOrderIssued")
    run.advance_to(at(2026, 3, 9, 14, 30))  # breached at 14:30 Monday (4 working hours)
    assert not events(run, "ReminderIssued")
    run.advance_to(at(2026, 3, 10, 17, 30))  # the next working day
    assert [e.data["timer"] for e in events(run, "ReminderIssued")] == ["work"]


def test_the_supervision_section_is_validated():
    bad = PLAIN + """
supervision:
  levels:
    general: {reply_within: soon, colour: red}
  reminder_after: 2x
  bogus: 1
"""
    with pytest.raises(DefinitionError) as err:
        workflow(bad)
    text = str(err.value)
    assert "bogus" in text and "colour" in text and "soon" in text and "2x" in text


def test_a_level_choice_must_be_a_supervision_level():
    text = PLAIN.replace("  supervise: {from: open, roles: [supervisor], supervise: true}", """  supervise:
    from: open
    roles: [supervisor]
    supervise: true
    fields:
      level: {type: choice, choices: [general, urgent]}
""") + """
supervision:
  levels:
    general: {label: 一般督办, reply_within: 3wd}
"""
    with pytest.raises(DefinitionError, match="'urgent' is not a supervision level"):
        workflow(text)


def test_a_reply_kind_needs_levels_and_kinds_are_known():
    text = PLAIN + """
  answer: {from: open, roles: [community_dispatcher], kind: supervision_reply}
  odd: {from: open, roles: [community_dispatcher], kind: teleport}
"""
    with pytest.raises(DefinitionError) as err:
        workflow(text)
    assert "supervision_reply needs" in str(err.value) and "unknown kind 'teleport'" in str(err.value)


def test_a_pending_reminder_waits_out_a_suspension_and_is_planned_again_on_resume(run):
    handling(run)  # handle due Wednesday 11:00; its breach escalates and supervises
    run.advance_to(at(2026, 3, 11, 11, 0))
    before = run.timer("reminder", "handle.")
    run.act("request_suspension", DEPT, {"reason_code": "resident_unavailable", "reason": "等待业主",
                                         "duration": "5wd"})
    run.act("approve_suspension", COMMUNITY)
    assert not [t for t in run.pending.values() if t.kind == "reminder"]  # paused: nothing to remind yet
    run.advance(hours=2)
    run.act("resume", DEPT)
    again = run.timer("reminder", "handle.")
    assert again.due_at == before.due_at and again.generation > before.generation
    run.advance_to(again.due_at)
    assert [e.data["timer"] for e in events(run, "ReminderIssued")] == ["handle"]


def test_one_rule_one_unit_of_time_the_hotline_is_reminded_in_working_days_too(shipped):
    operator = Actor("op-1", "hotline_operator", "hotline-centre")
    r = Runner(Engine(shipped["hotline_request"], CALENDARS), ManualClock(MONDAY_9))
    r.open(operator, origin_unit="community-1")
    r.act("dispatch", operator, {"unit": "water-company", "urgency": "general"})
    r.act("sign_for", DEPT)
    r.act("contact_requester", DEPT, {"reached": True})  # handle: 7 calendar days, due Monday 16th 09:00
    r.advance_to(at(2026, 3, 16, 9, 0))
    reminder = r.timer("reminder", "handle.")
    assert local(reminder.due_at) == at(2026, 3, 17, 17, 30)  # the next working day on the cn calendar
    r.advance_to(at(2026, 3, 17, 17, 30))
    assert [e.data["unit"] for e in events(r, "ReminderIssued")] == ["water-company"]
