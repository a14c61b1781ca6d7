"""Calendar-period deadlines (``due:``), ``warn_before``, ``stay`` routes and de-escalation, on a manual
clock across month ends, February, holidays and the year end (special_care_visit v3 and inline
definitions)."""

from __future__ import annotations

from datetime import date

import pytest

from gridflow.engine import Actor, DefinitionError, Engine, ManualClock
from gridflow.engine.schedules import Schedule, ScheduleError
from tests.unit.helpers import CALENDARS, COMMUNITY, GRID, Runner, at, local, workflow

CN = CALENDARS.get("cn")
HOME = {"method": "home", "condition": "stable"}


def care(shipped, start, data=None) -> Runner:
    r = Runner(Engine(shipped["special_care_visit"], CALENDARS), ManualClock(start))
    r.open(COMMUNITY, origin_unit="community-1", data=data or {})
    return r


def breaches(r: Runner) -> list:
    return [e for e in r.events if e.type == "DeadlineBreached"]


# --- the schedule arithmetic --------------------------------------------------------------------

@pytest.mark.parametrize(("month", "due"), [
    ((2026, 1), at(2026, 1, 30, 17, 30)),   # 01-31 is a Saturday
    ((2026, 2), at(2026, 2, 28, 17, 30)),   # 春节 2026: Saturday 02-28 is a 调休 working day
    ((2026, 5), at(2026, 5, 29, 17, 30)),   # 05-30/31 weekend
    ((2026, 9), at(2026, 9, 30, 17, 30)),   # the day before 国庆 is worked
    ((2026, 12), at(2026, 12, 31, 17, 30)),
    ((2028, 2), at(2028, 2, 29, 17, 30)),   # a leap February
])
def test_a_calendar_month_is_due_at_close_of_business_of_its_last_working_day(month, due):
    assert Schedule().due_in(date(*month, 1), CN) == due


def test_the_17th_rolls_to_the_next_working_day_when_it_is_a_day_off():
    s = Schedule.parse({"day_of_month": 17, "roll": "next_working_day"})
    assert [local(s.due_in(date(2026, m, 1), CN)).date() for m in (1, 2, 3, 5, 10)] == [
        date(2026, 1, 19), date(2026, 2, 24), date(2026, 3, 17), date(2026, 5, 18), date(2026, 10, 19)]
    # the first 17th after the 18th of December is January's
    assert local(s.due(at(2026, 12, 18, 9, 0), CN)) == at(2027, 1, 18, 17, 30)


def test_schedules_refuse_what_they_cannot_mean():
    for raw in ({"period": "fortnight"}, {"day_of_month": 32}, {"day_of_month": 17, "at": "last_day"},
                {"at": "last_working_day", "roll": "next_working_day"}, {"every": 2}, "monthly"):
        with pytest.raises(ScheduleError):
            Schedule.parse(raw)


def test_a_timer_has_a_duration_or_a_due_and_repeat_period_needs_a_due():
    with pytest.raises(DefinitionError) as err:
        workflow("""
name: bad
roles: [community_dispatcher]
initial: a
states:
  a:
    timers:
      - {name: t, duration: 2wd, due: {period: calendar_month}}
      - {name: u, duration: 2wd, repeat: period}
  b: {final: true}
actions:
  go: {from: a, to: b, roles: [community_dispatcher]}
""")
    text = str(err.value)
    assert "either 'duration'" in text and "repeat: period goes with 'due:'" in text


# --- special_care_visit v3: one visit per calendar month ----------------------------------------

def test_a_registration_owes_a_visit_in_its_own_month(shipped):
    r = care(shipped, at(2026, 3, 9, 9, 0))
    d = r.deadline("visit")
    assert local(d.due_at) == at(2026, 3, 31, 17, 30)
    assert [e.data.get("period") for e in r.events if e.type == "DeadlineStarted"] == ["2026-03"]


def test_a_registration_in_the_last_week_owes_its_first_visit_next_month(shipped):
    r = care(shipped, at(2026, 3, 27, 9, 0))  # fewer than five working days left in March
    assert local(r.deadline("visit").due_at) == at(2026, 4, 30, 17, 30)


def test_a_visit_meets_its_month_and_the_next_deadline_is_the_next_months(shipped):
    r = care(shipped, at(2026, 3, 9, 9, 0))
    r.advance_to(at(2026, 3, 10, 10, 0))
    r.act("visit", GRID, HOME)
    stopped = [e for e in r.events if e.type == "DeadlineStopped"][-1]
    assert stopped.data["met"] is True and stopped.data["period_met"] == "2026-03"
    assert local(r.deadline("visit").due_at) == at(2026, 4, 30, 17, 30)
    r.advance_to(at(2026, 3, 20, 10, 0))
    r.act("visit", GRID, HOME)  # a second visit in March still owes April, not May
    assert local(r.deadline("visit").due_at) == at(2026, 4, 30, 17, 30)


def test_visits_on_january_31_and_march_2_leave_february_breached(shipped):
    r = care(shipped, at(2026, 1, 5, 9, 0))
    r.advance_to(at(2026, 1, 20, 10, 0))
    r.act("visit", GRID, HOME)
    r.advance_to(at(2026, 1, 31, 10, 0))  # 31 days before 03-02: a rolling 30 days would miss February
    r.act("visit", GRID, HOME)
    assert local(r.deadline("visit").due_at) == at(2026, 2, 28, 17, 30)
    r.advance_to(at(2026, 3, 2, 10, 0))
    assert [local(b.at) for b in breaches(r)] == [at(2026, 2, 28, 17, 30)]
    assert r.case.escalation_level == 1 and r.case.supervised
    warned = [e for e in r.events if e.type == "DeadlineWarned"]
    assert [local(e.at) for e in warned] == [at(2026, 2, 25, 17, 30)] and warned[0].data["before"] == "3wd"
    r.act("visit", GRID, HOME)
    assert local(r.deadline("visit").due_at) == at(2026, 4, 30, 17, 30)  # 03-02 met March


def test_every_further_month_without_a_visit_breaches_again_at_its_end(shipped):
    r = care(shipped, at(2026, 8, 3, 9, 0))
    r.advance_to(at(2026, 11, 2, 9, 0))
    assert [local(b.at) for b in breaches(r)] == [
        at(2026, 8, 31, 17, 30), at(2026, 9, 30, 17, 30), at(2026, 10, 30, 17, 30)]
    assert [e.data["to_level"] for e in r.events if e.type == "CaseEscalated"] == ["street", "district"]


def test_the_year_end_turns_december_into_january(shipped):
    r = care(shipped, at(2026, 12, 1, 9, 0))
    r.advance_to(at(2026, 12, 30, 10, 0))
    r.act("visit", GRID, HOME)
    assert local(r.deadline("visit").due_at) == at(2027, 1, 29, 17, 30)


def test_a_resumed_visit_brings_the_escalated_case_back_down(shipped):
    r = care(shipped, at(2026, 8, 3, 9, 0))
    r.advance_to(at(2026, 10, 8, 9, 0))
    assert r.case.escalation_level == 2
    r.act("visit", GRID, HOME)
    down = [e for e in r.events if e.type == "CaseDeescalated"]
    assert [(e.data["from_level"], e.data["to_level"]) for e in down] == [("district", "community")]
    assert r.case.escalation_level == 0
    r.act("visit", GRID, HOME)
    assert len([e for e in r.events if e.type == "CaseDeescalated"]) == 1  # nothing to come down from


def test_a_visit_kind_that_does_not_count_is_recorded_and_leaves_the_month_owed(shipped):
    r = care(shipped, at(2026, 8, 3, 9, 0), data={"uncounted_kinds": ["phone"]})
    r.advance_to(at(2026, 9, 2, 9, 0))
    due = r.deadline("visit")
    r.act("visit", GRID, {"method": "phone", "condition": "stable"})
    assert r.events[-1].type == "ActionTaken" and r.events[-1].data["to_state"] == "due"
    assert r.deadline("visit") == due and r.case.escalation_level == 1  # no stop, no de-escalation
    r.act("visit", GRID, {"method": "video", "condition": "stable"})
    assert r.case.escalation_level == 0 and local(r.deadline("visit").due_at) == at(2026, 10, 30, 17, 30)


def test_downtime_across_two_month_ends_fires_once_with_its_lateness(shipped):
    r = care(shipped, at(2026, 8, 3, 9, 0))
    r.jump_to(at(2026, 10, 8, 9, 0))  # the runner was down over the August and September ends
    bs = breaches(r)
    assert len(bs) == 1 and bs[0].data["missed"] == 1
    assert bs[0].data["lateness_s"] == (at(2026, 10, 8, 9, 0) - at(2026, 8, 31, 17, 30)).total_seconds()
    assert r.case.escalation_level == 1
    nxt = [t for t in r.pending.values() if t.kind == "breach"]
    assert [local(t.due_at) for t in nxt] == [at(2026, 10, 30, 17, 30)]


def test_deregistering_meets_no_month(shipped):
    r = care(shipped, at(2026, 3, 9, 9, 0))
    r.act("deregister", COMMUNITY, {"reason": "moved_away"})
    stopped = [e for e in r.events if e.type == "DeadlineStopped"][-1]
    assert "period_met" not in stopped.data and "periods_met" not in r.case.data


def test_a_pause_over_month_ends_resumes_onto_the_month_it_ends_in(shipped):
    r = care(shipped, at(2026, 3, 9, 9, 0))
    r.act("pause_visits", GRID, {"reason": "in_hospital"})
    r.advance_to(at(2026, 5, 11, 9, 0))
    assert breaches(r) == []
    r.act("resume_visits", GRID)
    assert local(r.deadline("visit").due_at) == at(2026, 5, 29, 17, 30)


# --- the same keys in any workflow ---------------------------------------------------------------

MEETING = """
name: meeting
roles: [community_dispatcher]
initial: waiting
states:
  waiting:
    timers:
      - name: meet
        due: {day_of_month: 17, roll: next_working_day}
        warn_before: 2wd
        repeat: period
  done: {final: true}
actions:
  hold: {from: waiting, to: waiting, roles: [community_dispatcher]}
  end: {from: waiting, to: done, roles: [community_dispatcher]}
"""


def test_a_monthly_17th_deadline_rolls_over_the_spring_festival():
    r = Runner(Engine(workflow(MEETING), CALENDARS), ManualClock(at(2026, 2, 2, 9, 0)))
    r.open(COMMUNITY)
    assert local(r.deadline("meet").due_at) == at(2026, 2, 24, 17, 30)
    r.advance_to(at(2026, 2, 25, 9, 0))
    assert [local(b.at) for b in breaches(r)] == [at(2026, 2, 24, 17, 30)]
    r.act("hold", COMMUNITY)
    assert local(r.deadline("meet").due_at) == at(2026, 3, 17, 17, 30)


def test_a_route_can_test_a_field_against_a_list_in_the_case_data():
    defn = workflow("""
name: kinds
roles: [community_dispatcher]
initial: a
states: {a: {}, b: {final: true}}
actions:
  go:
    from: a
    to: b
    roles: [community_dispatcher]
    fields: {kind: {type: choice, choices: [x, y]}}
    routes:
      - when: {kind: {in: $data.skip}}
        stay: true
""")
    r = Runner(Engine(defn, CALENDARS), ManualClock(at(2026, 3, 9, 9, 0)))
    r.open(COMMUNITY, data={"skip": ["x"]})
    r.act("go", COMMUNITY, {"kind": "x"})
    assert r.case.state == "a"
    r.act("go", COMMUNITY, {"kind": "y"})
    assert r.case.state == "b"


def test_deescalate_on_an_action_is_recorded_and_drops_the_escalation_units():
    defn = workflow("""
name: up_down
roles: [community_dispatcher, street_dispatcher]
escalation:
  ladder: [community, street]
  handlers: {community: [community_dispatcher], street: [street_dispatcher]}
initial: a
states: {a: {}, z: {final: true}}
actions:
  end: {from: a, to: z, roles: [community_dispatcher]}
  up: {from: a, roles: [community_dispatcher], escalate: true}
  down: {from: a, roles: [community_dispatcher], deescalate: true}
""")
    r = Runner(Engine(defn, CALENDARS), ManualClock(at(2026, 3, 9, 9, 0)))
    r.open(COMMUNITY, data={"escalation_units": ["street-1"]})
    r.act("up", COMMUNITY)
    assert r.case.escalation_level == 1
    r.act("down", Actor("c", "community_dispatcher", "community-1"))
    assert r.case.escalation_level == 0 and "escalation_units" not in r.case.data
    assert r.types()[-1] == "CaseDeescalated"
