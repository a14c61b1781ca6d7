"""The shipped lifecycles beyond grid_event, each driven through its deadlines on the real calendars."""

from __future__ import annotations

import pytest

from gridflow.engine import Actor, Engine, GuardFailed, ManualClock
from tests.unit.helpers import CALENDARS, COMMUNITY, DEPT, GRID, MONDAY_9, STREET, Runner, at, local

OPERATOR = Actor("op-1", "hotline_operator", "hotline-centre")
MEDIATOR = Actor("med-1", "mediator", "community-1")
DISTRICT = Actor("dist-1", "district_dispatcher", "district-1")
OFFICER = Actor("officer-1", "disaster_officer", "community-1")


def runner(shipped, name: str, start=MONDAY_9, opener: Actor = COMMUNITY) -> Runner:
    r = Runner(Engine(shipped[name], CALENDARS), ManualClock(start))
    r.open(opener, origin_unit="community-1")
    return r


# --- 12345 hotline ----------------------------------------------------------------------------


def dispatch(r: Runner, urgency: str) -> Runner:
    r.act("dispatch", OPERATOR, {"unit": "water-company", "urgency": urgency, "request_type": "help"})
    return r


def test_an_urgent_hotline_request_must_be_answered_within_two_hours_around_the_clock(shipped):
    r = runner(shipped, "hotline_request", start=at(2026, 3, 14, 22, 0), opener=OPERATOR)  # Saturday night
    dispatch(r, "urgent")
    assert r.case.state == "urgent_response" and r.case.holder_unit == "water-company"
    assert local(r.deadline("handle").due_at) == at(2026, 3, 15, 0, 0)
    r.advance_to(at(2026, 3, 15, 1, 0))  # breached at midnight, again an hour later
    assert [e.data["to_level"] for e in r.events if e.type == "CaseEscalated"] == ["district", "city"]
    assert r.case.supervised


def test_utility_requests_get_twenty_four_hours(shipped):
    r = dispatch(runner(shipped, "hotline_request", opener=OPERATOR), "utilities")
    assert r.case.state == "utility_response"
    assert local(r.deadline("handle").due_at) == at(2026, 3, 10, 9, 0)


def test_a_general_request_is_signed_for_then_the_requester_is_called_then_it_is_handled(shipped):
    r = dispatch(runner(shipped, "hotline_request", opener=OPERATOR), "general")
    assert r.case.state == "signing" and r.case.data["urgency"] == "general"
    assert local(r.deadline("sign_for").due_at) == at(2026, 3, 10, 17, 30)
    r.act("sign_for", DEPT)
    assert r.case.state == "contacting"
    r.act("contact_requester", DEPT, {"reached": True})
    assert r.case.state == "handling"
    assert local(r.deadline("handle").due_at) == at(2026, 3, 16, 9, 0)  # 7 days


def test_a_request_the_unit_finds_complex_gets_fifteen_days(shipped):
    r = dispatch(runner(shipped, "hotline_request", opener=OPERATOR), "complex")
    r.act("sign_for", DEPT)
    r.act("contact_requester", DEPT, {"reached": True, "complex": True})
    assert r.case.state == "handling_complex"
    assert local(r.deadline("handle").due_at) == at(2026, 3, 24, 9, 0)


def test_a_missed_handling_limit_is_supervised_and_climbs_again_five_working_days_later(shipped):
    r = dispatch(runner(shipped, "hotline_request", opener=OPERATOR), "general")
    r.act("sign_for", DEPT)
    r.act("contact_requester", DEPT, {"reached": True})
    r.advance_to(at(2026, 3, 16, 9, 0))
    assert r.case.supervised and r.case.escalation_level == 1
    r.act("reply_supervision_order", Actor("dh-water", "department_handler", "water-company"),
          {"reply": "已加派人手"})  # answered: only the repeat climbs
    r.advance_to(at(2026, 3, 23, 17, 29))  # five calendar days would have been Saturday the 21st
    assert r.case.escalation_level == 1
    r.advance_to(at(2026, 3, 23, 17, 30))  # close of business of the 5th working day, as grid_event counts
    assert r.case.escalation_level == 2 and r.case.breach_count == 2


def test_an_extension_is_asked_for_with_a_word_for_the_requester_and_approved_by_the_centre(shipped):
    r = dispatch(runner(shipped, "hotline_request", opener=OPERATOR), "general")
    r.act("sign_for", DEPT)
    r.act("contact_requester", DEPT, {"reached": True})
    with pytest.raises(Exception, match="reason_for_requester is required"):
        r.act("request_extension", DEPT, {"duration": "3d", "reason": "等待配件"})
    r.act("request_extension", DEPT,
          {"duration": "3d", "reason": "等待配件", "reason_for_requester": "配件下周到"})
    r.act("approve_extension", OPERATOR)
    assert local(r.deadline("handle").due_at) == at(2026, 3, 19, 9, 0)


def test_a_dissatisfied_requester_is_reviewed_and_the_unit_reworks_the_request(shipped):
    r = dispatch(runner(shipped, "hotline_request", opener=OPERATOR), "general")
    r.act("sign_for", DEPT)
    r.act("contact_requester", DEPT, {"reached": True})
    r.act("reply", DEPT, {"result": "已维修"})
    assert r.case.state == "awaiting_callback"
    assert local(r.deadline("callback").due_at) == at(2026, 3, 10, 17, 30)  # the working day after
    r.act("call_back", OPERATOR, {"reached": True})
    r.act("rate", OPERATOR, {"rating": "dissatisfied", "resolved": False})
    assert r.case.state == "dissatisfied_review"
    r.act("order_rework", OPERATOR, {"reason": "问题仍存在"})
    assert r.case.state == "handling" and r.deadline("handle").started_at == r.clock.now()


def test_a_requester_who_never_rates_is_closed_unrated_after_three_working_days(shipped):
    r = dispatch(runner(shipped, "hotline_request", opener=OPERATOR), "urgent")
    r.act("reply", DEPT, {"result": "已处置"})
    r.act("call_back", OPERATOR, {"reached": False})
    r.advance_to(at(2026, 3, 12, 17, 30))
    assert r.case.state == "closed" and r.case.data["rating"] == "unrated"
    assert r.case.data["rated_by_default"] is True


# --- dispute mediation ------------------------------------------------------------------------


def mediating(shipped) -> Runner:
    r = runner(shipped, "dispute_mediation", opener=GRID)
    r.act("accept", COMMUNITY, {"mediator": "王调解员", "dispute_type": "neighbourhood", "parties": 2})
    return r


def test_a_level_that_fails_hands_the_dispute_up_with_a_fresh_deadline(shipped):
    r = mediating(shipped)
    first = r.deadline("mediate")
    r.advance(hours=5)
    r.act("hand_up", MEDIATOR, {"reason": "双方分歧大"})
    second = r.deadline("mediate")
    assert r.case.escalation_level == 1 and r.decisions[-1].escalated_to == "street"
    assert second.id != first.id and second.started_at == r.clock.now()
    r.act("hand_up", STREET, {"reason": "涉及多个部门"})
    assert r.case.escalation_level == 2 and r.decisions[-1].escalated_to == "district"
    with pytest.raises(GuardFailed, match="already at the top level"):
        r.act("hand_up", MEDIATOR, {"reason": "还是不行"})  # the district is the top: it refers instead
    r.act("refer_to_court", DISTRICT, {"court": "区人民法院诉前调解", "reason": "调解不成"})
    assert (r.case.state, r.case.outcome) == ("referred", "transferred")


def test_mediation_that_runs_out_of_time_climbs_to_the_top_then_raises_an_alert(shipped):
    r = mediating(shipped)  # Monday 09:00: 10 working days, due Monday 03-23 17:30
    assert local(r.deadline("mediate").due_at) == at(2026, 3, 23, 17, 30)
    r.advance_to(at(2026, 3, 23, 17, 30))
    assert r.case.escalation_level == 1
    r.advance_to(at(2026, 4, 7, 17, 30))  # and every 5 working days after (Qingming: 04-06 is off)
    types = r.types()
    assert r.case.escalation_level == 2 and types.count("CaseEscalated") == 2
    assert types.count("EscalationAlertRaised") == 1


def test_the_level_above_takes_over_with_a_fresh_deadline(shipped):
    r = mediating(shipped)
    r.advance_to(at(2026, 3, 23, 17, 30))
    r.advance(hours=16)
    r.act("take_over", STREET, {"mediator": "街道李调解员"})
    assert r.deadline("mediate").breaches == 0 and r.case.data["mediator"] == "街道李调解员"


def test_an_agreement_is_followed_up_until_performed(shipped):
    r = mediating(shipped)
    r.act("record_session", MEDIATOR, {"summary": "第一次调解", "attendees": 3})
    assert r.case.state == "mediating"
    r.act("reach_agreement", MEDIATOR, {"agreement": "赔偿500元", "judicial_confirmation": False})
    assert r.case.state == "performing"
    r.act("confirm_performed", GRID)
    assert (r.case.state, r.case.outcome) == ("agreed", "resolved")


def test_an_agreement_not_kept_goes_back_to_mediation_and_the_parties_may_withdraw(shipped):
    r = mediating(shipped)
    r.act("reach_agreement", MEDIATOR, {"agreement": "修缮围墙"})
    r.act("report_default", GRID, {"reason": "未按期修缮"})
    assert r.case.state == "mediating"
    r.act("withdraw", MEDIATOR, {"reason": "双方和解"})
    assert (r.case.state, r.case.outcome) == ("withdrawn", "cancelled")


# --- special care visits, version 2 (30-day stretches; kept for its cases) -----------------------
# Version 3 (calendar months) is tested in test_engine_schedules.py.


@pytest.fixture(scope="module")
def care_v2():
    from gridflow.engine import load_file
    from gridflow.workflows import WORKFLOWS_DIR

    v2 = load_file(WORKFLOWS_DIR / "special_care_visit_v2.yaml", calendars=CALENDARS)
    return {"special_care_visit": v2}


def test_a_visit_restarts_the_monthly_visit_clock(care_v2):
    r = runner(care_v2, "special_care_visit", opener=COMMUNITY)
    first = r.deadline("visit")
    assert local(first.due_at) == at(2026, 4, 8, 9, 0)
    r.advance(days=20)
    r.act("visit", GRID, {"method": "home", "condition": "stable", "notes": "身体良好"})
    stopped = [e for e in r.events if e.type == "DeadlineStopped"][-1]
    assert stopped.data["met"] is True
    nxt = r.deadline("visit")
    assert r.case.state == "due" and nxt.id != first.id and local(nxt.due_at) == at(2026, 4, 28, 9, 0)
    assert r.case.data["last_condition"] == "stable"


def test_an_overdue_visit_escalates_and_again_every_week(care_v2):
    r = runner(care_v2, "special_care_visit", opener=COMMUNITY)
    r.advance(days=30)
    assert r.case.escalation_level == 1 and r.case.supervised
    r.advance(days=7)
    assert r.case.escalation_level == 2


def test_a_visit_that_finds_a_need_arranges_help_before_the_next_month_starts(care_v2):
    r = runner(care_v2, "special_care_visit", opener=COMMUNITY)
    r.act("visit", GRID, {"method": "phone", "condition": "needs_help"})
    assert r.case.state == "assisting" and local(r.deadline("assist").due_at) == at(2026, 3, 16, 17, 30)
    r.advance(days=2)
    r.act("arrange_help", COMMUNITY, {"help": "申请临时救助", "referred_to": "street-civil-affairs"})
    assert r.case.state == "due" and r.deadline("visit").started_at == r.clock.now()


def test_visits_pause_while_the_resident_is_in_hospital(care_v2):
    r = runner(care_v2, "special_care_visit", opener=COMMUNITY)
    r.advance(days=10)
    r.act("pause_visits", GRID, {"reason": "in_hospital"})
    r.advance(days=40)
    assert r.case.escalation_level == 0  # nothing fires while paused
    r.act("resume_visits", GRID)
    assert r.deadline("visit").due_at == r.clock.now() + (at(2026, 4, 8, 9, 0) - at(2026, 3, 19, 9, 0))


def test_deregistering_closes_the_case(care_v2):
    r = runner(care_v2, "special_care_visit", opener=COMMUNITY)
    r.act("deregister", COMMUNITY, {"reason": "moved_away"})
    assert r.case.is_closed and r.case.outcome == "cancelled" and r.case.deadlines == ()


# --- emergencies ------------------------------------------------------------------------------


def test_an_unanswered_emergency_escalates_straight_up_every_fifteen_minutes(shipped):
    r = runner(shipped, "emergency_incident", start=at(2026, 10, 2, 3, 0), opener=OFFICER)  # a holiday night
    assert local(r.deadline("respond").due_at) == at(2026, 10, 2, 3, 15)
    r.advance(minutes=7, seconds=30)
    assert r.types()[-1] == "DeadlineWarned"
    r.advance_to(at(2026, 10, 2, 4, 0))
    assert ([e.data["to_level"] for e in r.events if e.type == "CaseEscalated"]
            == ["street", "district", "city"])
    assert r.types().count("EscalationAlertRaised") == 1 and r.case.supervised


def test_an_emergency_is_reported_up_the_line_within_minutes_and_closed_with_a_final_report(shipped):
    r = runner(shipped, "emergency_incident", start=at(2026, 10, 2, 3, 0), opener=OFFICER)
    r.advance(minutes=10)
    r.act("respond", OFFICER, {"responder": "张三"})
    assert local(r.deadline("initial_report").due_at) == at(2026, 10, 2, 3, 40)
    r.advance(minutes=20)
    r.act("report_initial", OFFICER, {"severity": "general", "kind": "flood", "casualties": 0,
                                      "summary": "地下车库进水"})
    first = r.deadline("progress_report")
    r.advance(minutes=100)
    r.act("report_progress", OFFICER, {"summary": "排水中"})
    second = r.deadline("progress_report")
    assert second.id != first.id and local(second.due_at) == at(2026, 10, 2, 7, 10)
    r.act("assign_department", COMMUNITY, {"department": "drainage"})
    assert r.case.holder_unit == "drainage"
    r.act("escalate_response", COMMUNITY, {"reason": "需要街道调度抽水泵"})
    assert r.case.escalation_level == 1
    r.act("contain", STREET, {"summary": "积水已排除"})
    r.act("report_final", STREET, {"report": "无人员伤亡"})
    assert (r.case.state, r.case.outcome) == ("closed", "resolved")
    assert r.case.escalation_level == 1  # only the deliberate hand-up: every deadline was met


def test_every_role_group_draws_on_the_known_roles():
    from gridflow.engine.definition import ROLE_LABELS
    from gridflow.engine.roles import (
        CONTACT_ROLES, KNOWN_ROLES, REPORTER_ROLES, STAFF_ROLES, SYSTEM_ROLE, UNIT_KINDS, USER_ROLES,
    )

    assert REPORTER_ROLES | STAFF_ROLES | CONTACT_ROLES | set(USER_ROLES) <= KNOWN_ROLES
    assert SYSTEM_ROLE not in USER_ROLES and set(ROLE_LABELS) == KNOWN_ROLES
    assert UNIT_KINDS == ("city", "district", "street", "community", "grid", "department")


def test_only_the_grid_event_and_hotline_workflows_take_anonymous_reports(shipped):
    public = {name for name, defn in shipped.items() if defn.intake.public}
    assert public == {"grid_event", "hotline_request"}
    assert (shipped["grid_event"].version, shipped["hotline_request"].version) == (4, 3)
