"""Clocks nobody can game, through the service on real SQLite and real PostgreSQL (issue 11 items 4 and 7):
handling limits counted from dispatch, catching up after downtime without floods, capped extensions,
挂起 with approval and a ceiling, 退单 reviewed on the second return.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gridflow.engine.case import Actor
from gridflow.engine.errors import GuardFailed, PayloadInvalid
from gridflow.processes.runners import InlineTimerRunner
from tests.integration.helpers import COMMUNITY, DISPATCHER, HOUSING, STREET, act, report, snapshot

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = datetime(2026, 11, 9, 9, 0, tzinfo=SH)  # a quiet working week, no holiday near it
STREET_DISPATCHER = Actor("sd-1", "street_dispatcher", STREET)
URBAN = Actor("dh-urban", "department_handler", "dept-urban")
OPERATOR = Actor("op-1", "hotline_operator", "370602")


def _events(svc, number, type_=None):
    return [e for e in snapshot(svc, number)[1] if type_ in (None, e.type)]


def _dispatched(svc, department="dept-housing"):
    number = report(svc).number
    act(svc, number, "dispatch", DISPATCHER, {"department": department})
    return number


def _handling(svc):
    number = _dispatched(svc)
    act(svc, number, "acknowledge", HOUSING)
    return number


def _give_back(svc, number, unit=HOUSING, code="not_our_duty"):
    act(svc, number, "return_case", unit, {"reason_code": code, "reason": "不属于本部门职责"})


# --- 7. a database left 19 days gets at most one breach per deadline per case --------------------


def test_a_database_left_nineteen_days_fires_each_deadline_once_recording_lateness_and_missed(app, clock):
    svc = app.services
    numbers = [report(svc).number for _ in range(2)] + [_dispatched(svc) for _ in range(3)] \
        + [_handling(svc) for _ in range(3)]
    hotline = report(svc, "hotline_request", reporter=OPERATOR).number
    act(svc, hotline, "dispatch", OPERATOR, {"unit": "dept-urban", "urgency": "general"})
    numbers.append(hotline)
    clock.set(clock.now() + timedelta(days=19))  # the server was not running
    outcomes = InlineTimerRunner(svc).run_due()
    assert outcomes and {o.status for o in outcomes} <= {"fired", "stale"}
    assert InlineTimerRunner(svc).run_due() == []  # nothing left behind in the past
    breaches = []
    for number in numbers:
        history = _events(svc, number)
        per_deadline = Counter(e.data["deadline"] for e in history if e.type == "DeadlineBreached")
        assert per_deadline and max(per_deadline.values()) == 1, (number, per_deadline)
        assert not [e for e in history if e.type == "DeadlineWarned"]  # every breach had passed too
        escalations = [e for e in history if e.type in ("CaseEscalated", "EscalationAlertRaised")]
        assert len(escalations) <= len(per_deadline)
        breaches += [e.data for e in history if e.type == "DeadlineBreached"]
    assert all(b["lateness_s"] > 0 and b["missed"] >= 0 for b in breaches)
    assert any(b["missed"] >= 1 for b in breaches)  # repeats that fell in the downtime were coalesced
    _, _, timers = snapshot(svc, numbers[-1])
    assert all(t.due_at > clock.now() for t in timers)  # the next repeat is the first one after now


# --- 2. the handling limit counts from dispatch ----------------------------------------------------


def test_a_late_sign_for_leaves_the_handling_limit_due_sixteen_working_hours_after_dispatch(app, clock):
    svc = app.services
    clock.set(MONDAY_9)
    number = _dispatched(svc)
    clock.set(datetime(2026, 11, 10, 17, 0, tzinfo=SH))  # signed for on Tuesday 17:00
    act(svc, number, "acknowledge", HOUSING)
    row, events, timers = snapshot(svc, number)
    # Monday 09:00 + 16 working hours (08:30-12:00, 13:30-17:30): Wednesday 10:00, not Friday
    assert row.due_at.astimezone(SH) == datetime(2026, 11, 11, 10, 0, tzinfo=SH)
    breach = next(t for t in timers if t.kind == "breach")
    assert breach.deadline_id.startswith("handle.") and breach.due_at.astimezone(SH).hour == 10
    assert [e.data["timer"] for e in events if e.type == "DeadlineStarted"].count("handle") == 1


def test_the_hotline_seven_days_run_from_dispatch(app, clock):
    svc = app.services
    clock.set(MONDAY_9)
    number = report(svc, "hotline_request", reporter=OPERATOR).number
    act(svc, number, "dispatch", OPERATOR, {"unit": "dept-urban", "urgency": "general"})
    clock.set(datetime(2026, 11, 11, 10, 0, tzinfo=SH))
    act(svc, number, "sign_for", URBAN)
    act(svc, number, "contact_requester", URBAN, {"reached": True})
    row, _, _ = snapshot(svc, number)
    assert row.state == "handling"
    assert row.due_at.astimezone(SH) == datetime(2026, 11, 16, 9, 0, tzinfo=SH)  # 7 days after dispatch


# --- 5. extensions, capped --------------------------------------------------------------------------


def test_a_third_extension_is_refused_and_nothing_is_written(app, clock):
    svc = app.services
    clock.set(MONDAY_9)
    number = _handling(svc)
    for _ in range(2):
        act(svc, number, "request_extension", HOUSING, {"duration": "1wd", "reason": "需协调物业"})
        act(svc, number, "approve_extension", DISPATCHER)
    row, events, _ = snapshot(svc, number)
    data = row.sla["data"]
    assert data["extensions_approved"] == 2 and data["extension_reason_for_requester"] == "需协调物业"
    with pytest.raises(GuardFailed) as err:
        act(svc, number, "request_extension", HOUSING, {"duration": "1wd", "reason": "再延一次"})
    assert err.value.details["guard"] == "extension_within_limits"
    after, again, _ = snapshot(svc, number)
    assert after.version == row.version and len(again) == len(events)


# --- 6. 挂起 with approval and a ceiling ------------------------------------------------------------


def test_a_suspension_is_approved_shows_as_suspended_and_ends_at_its_ceiling(app, clock):
    svc = app.services
    clock.set(MONDAY_9)
    number = _handling(svc)
    act(svc, number, "request_suspension", HOUSING,
        {"reason_code": "legal_procedure", "reason": "等待司法鉴定", "duration": "10wd"})
    assert snapshot(svc, number)[0].state == "handling"
    act(svc, number, "approve_suspension", DISPATCHER)
    row, _, timers = snapshot(svc, number)
    assert row.state == "suspended" and row.suspended
    limit = next(t for t in timers if t.kind == "breach")
    assert limit.deadline_id.startswith("suspension_limit.")
    clock.set(limit.due_at + timedelta(minutes=1))
    InlineTimerRunner(svc).run_due()
    row, events, _ = snapshot(svc, number)
    assert row.state == "handling" and not row.suspended
    assert [e.type for e in events if e.type == "SuspensionLimitReached"] == ["SuspensionLimitReached"]
    taken = [e.data for e in events if e.type == "ActionTaken"][-1]
    assert (taken["action"], taken["kind"]) == ("resume_at_suspension_limit", "resume")


# --- 7. 退单: a reason from the list, the second one reviewed by the street --------------------------


def test_a_return_without_a_reason_from_the_list_is_refused(app):
    number = _dispatched(app.services)
    with pytest.raises(PayloadInvalid):
        act(app.services, number, "return_case", HOUSING, {"reason": "不归我们"})


def test_the_second_return_goes_to_the_street_and_an_upheld_dispatch_records_an_improper_return(app):
    svc = app.services
    number = _dispatched(svc)
    _give_back(svc, number)
    row, _, _ = snapshot(svc, number)
    assert (row.state, row.holder_unit) == ("reported", COMMUNITY)  # the community that dispatched it
    act(svc, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    _give_back(svc, number, code="wrong_location")
    row, events, _ = snapshot(svc, number)
    assert row.state == "return_review" and row.sla["data"]["returns"] == 2
    assert [e.data for e in events if e.type == "ReturnReviewRequested"] == [{"unit": "dept-housing",
                                                                              "count": 2}]
    act(svc, number, "uphold_dispatch", STREET_DISPATCHER, {"reason": "属住建职责"})
    row, events, _ = snapshot(svc, number)
    assert (row.state, row.holder_unit) == ("dispatched", "dept-housing")
    reviewed = [e.data for e in events if e.type == "ReturnReviewed"]
    assert reviewed == [{"unit": "dept-housing", "upheld": True}]
    assert [e.data for e in events if e.type == "ImproperReturnRecorded"] == [{"unit": "dept-housing"}]
    kinds = [e.data["kind"] for e in events if e.type == "ActionTaken"]
    assert kinds.count("return") == 2 and kinds.count("dispatch") == 3
