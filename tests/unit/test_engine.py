"""The engine on the reference lifecycle (grid_event), with the real "cn" calendar and a manual clock.

Times are Shanghai wall-clock times in a quiet week (Monday 2026-03-09 onwards);
office hours are 08:30-12:00 and 13:30-17:30.
"""

from __future__ import annotations

import gc
from datetime import timedelta, timezone

import pytest
from transitions import Machine

from gridflow.engine import (
    ActionNotAllowed, Actor, Engine, GuardFailed, ManualClock, PayloadInvalid, RoleNotAllowed, TimerSpec,
)
from gridflow.engine.engine import _MACHINES, compile_machine
from gridflow.engine.errors import UnknownAction

from tests.unit.helpers import (
    CALENDARS, COMMUNITY, DEPT, GRID, MONDAY_9, REPORTER, STREET, SUPERVISOR, Runner, at, local, workflow,
)


def iso(dt) -> str:
    """How the engine writes an instant: ISO 8601 in UTC."""
    return dt.astimezone(timezone.utc).isoformat()


def dispatched(run: Runner, hours: float = 1) -> Runner:
    run.advance(hours=hours)
    run.act("dispatch", COMMUNITY, {"department": "housing"})
    return run


def suspend(run: Runner, reason: str = "业主外出") -> Runner:
    """挂起 as the department asks and the community approves it."""
    run.act("request_suspension", DEPT, {"reason_code": "resident_unavailable", "reason": reason,
                                         "duration": "5wd"})
    run.act("approve_suspension", COMMUNITY)
    return run


def handling(run: Runner) -> Runner:
    dispatched(run)
    run.act("acknowledge", DEPT)  # Monday 10:00
    return run


def awaiting_feedback(run: Runner) -> Runner:
    handling(run)
    run.advance(hours=1)
    run.act("reply", DEPT, {"result": "已修复"})  # Monday 11:00
    return run


# --- refusals ---------------------------------------------------------------------------------


def test_an_action_not_open_in_the_current_state_is_refused_with_the_actions_that_are(run):
    with pytest.raises(ActionNotAllowed) as err:
        run.act("acknowledge", DEPT)
    assert err.value.details["state"] == "reported"
    assert err.value.details["allowed"] == []  # a department has nothing to do with an untriaged case
    with pytest.raises(ActionNotAllowed) as err:
        run.act("verify_pass", COMMUNITY)
    allowed = err.value.details["allowed"]
    assert set(allowed) == {"handle_locally", "merge", "reject", "dispatch", "refer_to_street"}
    assert "dispatch" in err.value.message and err.value.code == "action_not_allowed"


def test_an_action_the_workflow_does_not_have_is_unknown(run):
    with pytest.raises(UnknownAction) as err:
        run.act("teleport", COMMUNITY)
    assert "dispatch" in err.value.details["allowed"]


def test_a_role_that_may_not_take_the_action_is_refused(run):
    with pytest.raises(RoleNotAllowed) as err:
        run.act("dispatch", GRID, {"department": "housing"})
    assert err.value.details["roles"] == ["community_dispatcher", "street_dispatcher"]
    assert err.value.code == "role_not_allowed"


def test_a_guard_that_fails_refuses_with_its_reason(run):
    with pytest.raises(GuardFailed) as err:
        run.act("merge", COMMUNITY, {"duplicate_of": "C-1"})
    assert err.value.details["guard"] == "not_self_merge"
    assert "cannot be merged into itself" in err.value.details["reason"]


def test_a_resident_may_rate_only_the_case_they_reported(run):
    awaiting_feedback(run)
    with pytest.raises(GuardFailed) as err:
        run.act("rate", Actor("someone-else", "resident"), {"rating": "satisfied"})
    assert err.value.details["guard"] == "own_case_if_resident"
    run.act("rate", REPORTER, {"rating": "satisfied"})
    assert run.case.state == "reviewing"


def test_a_payload_missing_a_required_field_is_invalid(run):
    with pytest.raises(PayloadInvalid) as err:
        run.act("dispatch", COMMUNITY, {})
    assert err.value.details["fields"] == {"department": "is required"}
    assert {"name": "department", "type": "unit", "required": True} in err.value.details["expected"]


@pytest.mark.parametrize("value, problem", [
    (42, "must be non-empty text"),
    ("   ", "must be non-empty text"),
    ("x" * 201, "is longer than 200 characters"),
])
def test_a_payload_field_of_the_wrong_type_is_invalid(run, value, problem):
    with pytest.raises(PayloadInvalid) as err:
        run.act("dispatch", COMMUNITY, {"department": value})
    assert err.value.details["fields"]["department"] == problem


def test_a_choice_outside_its_choices_is_invalid(run):
    awaiting_feedback(run)
    with pytest.raises(PayloadInvalid) as err:
        run.act("rate", REPORTER, {"rating": "ecstatic"})
    assert (err.value.details["fields"]["rating"]
            == "must be one of satisfied, basically_satisfied, dissatisfied")
    assert err.value.details["expected"][0]["choices"] == ["satisfied", "basically_satisfied", "dissatisfied"]


def test_an_unknown_field_is_invalid_and_every_problem_is_reported_at_once(run):
    handling(run)
    with pytest.raises(PayloadInvalid) as err:
        run.act("request_extension", DEPT, {"duration": "soon", "colour": "red", "comment": 7})
    assert set(err.value.details["fields"]) == {"duration", "reason", "colour", "comment"}
    assert err.value.details["fields"]["colour"] == "is not a field of this action"
    assert err.value.details["fields"]["reason"] == "is required"
    assert "cannot parse duration 'soon'" in err.value.details["fields"]["duration"]


@pytest.mark.parametrize("spec, value, problem", [
    ("integer", "3", "must be a whole number"),
    ("integer", True, "must be a whole number"),
    ("number", "3.5", "must be a number"),
    ("boolean", "yes", "must be true or false"),
    ("datetime", "tomorrow", "must be an ISO 8601 date-time"),
    ("datetime", "2026-03-09T10:00:00", "must carry a time zone offset"),
    ("duration", "3", "cannot parse duration"),
])
def test_payload_values_are_checked_against_their_declared_types(clock, spec, value, problem):
    defn = workflow(f"""
name: typed
roles: [community_dispatcher]
initial: open
states:
  open: {{}}
  done: {{final: true}}
actions:
  note:
    from: open
    roles: [community_dispatcher]
    fields:
      value: {{type: {spec}, required: true}}
  finish: {{from: open, to: done, roles: [community_dispatcher]}}
""")
    r = Runner(Engine(defn, CALENDARS), clock)
    r.open(COMMUNITY)
    with pytest.raises(PayloadInvalid) as err:
        r.act("note", COMMUNITY, {"value": value})
    assert problem in err.value.details["fields"]["value"]


def test_a_payload_that_is_not_a_mapping_is_invalid(run):
    with pytest.raises(PayloadInvalid):
        run.act("dispatch", COMMUNITY, ["housing"])


def test_payload_values_are_normalised_before_they_are_recorded(run):
    run.act("dispatch", COMMUNITY, {"department": "  housing  ", "comment": "请尽快"})
    taken = next(e for e in run.events if e.type == "ActionTaken")
    assert taken.data["payload"] == {"department": "housing", "comment": "请尽快"}
    assert run.case.holder_unit == "housing"


def test_a_refused_action_changes_nothing(run):
    before = run.case
    with pytest.raises(RoleNotAllowed):
        run.engine.act(before, "dispatch", GRID, {"department": "housing"}, run.clock.now())
    assert run.case is before and before.state == "reported" and len(before.deadlines) == 1


# --- opening, moving, closing -----------------------------------------------------------------


def test_opening_a_case_records_the_reporter_and_starts_triage_on_office_hours(run):
    assert run.types() == ["CaseReported", "DeadlineStarted"]
    case = run.case
    assert (case.state, case.reporter, case.origin_unit, case.holder_unit) == (
        "reported", "resident-1", "community-1", "community-1")
    triage = run.deadline("triage")
    assert local(triage.due_at) == at(2026, 3, 9, 14, 30)  # 4 working hours: 09:00-12:00, 13:30-14:30
    assert triage.total == 4 * 3600
    assert local(run.timer("warning").due_at) == at(2026, 3, 9, 12, 0)  # 75%: 3 working hours
    assert local(run.timer("breach").due_at) == at(2026, 3, 9, 14, 30)


def test_a_case_reported_on_friday_evening_waits_for_monday_morning(engine):
    r = Runner(engine, ManualClock(at(2026, 3, 13, 19, 0)))
    r.open(REPORTER)
    assert local(r.deadline("triage").due_at) == at(2026, 3, 16, 14, 0)  # 3.5h before lunch, 0.5h after


def test_dispatch_stops_triage_as_met_and_starts_the_acknowledge_deadline(run):
    dispatched(run)  # Monday 10:00
    stopped = next(e for e in run.events if e.type == "DeadlineStopped")
    assert stopped.data["met"] is True and stopped.data["used_s"] == 3600.0
    assert stopped.data["reason"] == "state_left"
    assert run.decisions[-1].cancel == ("triage.1",)
    # the acknowledge limit and the handling limit, both counted from dispatch
    assert sorted(t.deadline_id for t in run.pending.values()) == ["acknowledge.2"] * 2 + ["handle.3"] * 2
    # close of the next working day
    assert local(run.deadline("acknowledge").due_at) == at(2026, 3, 10, 17, 30)
    assert local(run.deadline("handle").due_at) == at(2026, 3, 11, 11, 0)  # 16 working hours
    assert run.case.holder_unit == "housing"
    assigned = next(e for e in run.events if e.type == "CaseAssigned")
    assert assigned.data == {"from_unit": "community-1", "to_unit": "housing"}
    note = run.decisions[-1].notifications[0]
    assert (note.kind, note.unit, note.roles) == ("assigned", "housing", ("department_handler",))


def test_a_closed_case_holds_no_deadlines_and_no_timers(run):
    awaiting_feedback(run)
    run.act("rate", REPORTER, {"rating": "satisfied"})
    run.act("verify_pass", GRID)
    assert run.case.state == "closed" and run.case.is_closed and run.case.outcome == "resolved"
    assert run.case.deadlines == () and run.pending == {}
    assert run.types()[-2:] == ["DeadlineStopped", "CaseClosed"]


def test_rejecting_closes_the_case_with_outcome_rejected(run):
    run.act("reject", COMMUNITY, {"reason": "不属于受理范围"})
    assert (run.case.state, run.case.outcome) == ("rejected", "rejected")
    assert run.case.closed_at == run.clock.now()


# --- warnings, breaches, escalation -----------------------------------------------------------


def test_a_warning_fires_at_the_declared_fraction_of_the_working_time(run):
    fired = run.advance_to(at(2026, 3, 9, 12, 0))
    assert [e.type for d in fired for e in d.events] == ["DeadlineWarned"]
    warned = run.events[-1]
    assert warned.data["fraction"] == 0.75 and warned.data["light"] == "yellow"
    assert run.deadline("triage").warned == (0,)
    assert run.engine.sla_status(run.case, run.clock.now())["light"] == "yellow"
    assert fired[0].notifications[0].kind == "warned"


def test_unacknowledged_case_escalates_to_street_after_one_working_day(run):
    dispatched(run)  # Monday 10:00; acknowledge by close of business Tuesday
    run.advance_to(at(2026, 3, 10, 17, 29))
    assert run.case.escalation_level == 0
    fired = run.advance_to(at(2026, 3, 10, 17, 30))
    assert run.types()[-2:] == ["DeadlineBreached", "CaseEscalated"]
    assert run.case.escalation_level == 1 and fired[-1].escalated_to == "street"
    assert run.events[-1].data == {"from_level": "community", "to_level": "street", "level": 1,
                                   "reason": "deadline acknowledge.2 breached"}
    assert run.case.breach_count == 1
    assert {n.kind for n in fired[-1].notifications} == {"breached", "escalated"}
    assert run.engine.sla_status(run.case, run.clock.now())["light"] == "red"
    # the breach repeats a working day later (repeat: 1wd)
    assert local(run.timer("breach", "acknowledge").due_at) == at(2026, 3, 11, 17, 30)


def test_repeated_breach_climbs_further_up_the_ladder(run):
    dispatched(run)
    # acknowledge: Tue, Wed, Thu close of business; handling (counted from dispatch): Wed 11:00
    run.advance_to(at(2026, 3, 12, 17, 30))
    assert run.case.escalation_level == 3
    escalated = [e.data for e in run.events if e.type == "CaseEscalated"]
    assert [e["to_level"] for e in escalated] == ["street", "district", "city"]
    assert [e["reason"] for e in escalated] == [
        "deadline acknowledge.2 breached", "deadline handle.3 breached", "deadline acknowledge.2 breached"]
    assert run.deadline("acknowledge").breaches == 3 and run.case.breach_count == 4


def test_at_the_top_level_a_breach_raises_an_alert_instead_of_climbing(run):
    dispatched(run)
    run.advance_to(at(2026, 3, 16, 17, 30))  # acknowledge Tue, Wed, Thu, Fri, Mon; handling Wed 11:00
    assert run.case.escalation_level == 3  # city is the top
    alerts = [e for e in run.events if e.type == "EscalationAlertRaised"]
    assert len(alerts) == 3 and alerts[0].data["level"] == "city"
    assert run.decisions[-1].escalated_to is None
    assert [n.kind for n in run.decisions[-1].notifications] == ["breached", "alert"]
    assert run.case.state == "dispatched"  # an alert, not a failure


def test_a_breach_that_supervises_marks_the_case_supervised_once(run):
    handling(run)  # handle: 16 working hours from Monday 10:00, due Wednesday 11:00
    run.advance_to(at(2026, 3, 11, 11, 0))
    assert run.case.supervised
    assert run.types().count("CaseSupervised") == 1
    run.advance_to(at(2026, 3, 18, 17, 30))  # the repeat: close of the 5th working day after the breach
    assert run.types().count("DeadlineBreached") == 2 and run.types().count("CaseSupervised") == 1


def test_a_supervisor_can_supervise_any_open_case(run):
    run.act("supervise", SUPERVISOR, {"instructions": "限期办结"})
    assert run.case.supervised and run.case.state == "reported"
    assert run.types()[-2:] == ["ActionTaken", "CaseSupervised"]
    run.act("supervise", SUPERVISOR)
    assert run.types()[-1] == "ActionTaken"  # already supervised: recorded, not repeated


def test_an_unrated_case_is_rated_satisfied_by_default_when_the_rating_deadline_passes(run):
    awaiting_feedback(run)  # Monday 11:00; 3 working days to rate: Thursday 17:30
    run.advance_to(at(2026, 3, 12, 17, 30))
    assert run.case.state == "reviewing"
    assert run.case.data["rating"] == "satisfied" and run.case.data["rated_by_default"] is True
    taken = [e for e in run.events if e.type == "ActionTaken"][-1]
    assert (taken.data["action"], taken.actor, taken.role) == ("rate_by_default", "system", "system")
    assert "review" in {d.timer for d in run.case.deadlines}


def test_a_breach_action_refused_by_its_guard_is_recorded_and_not_taken(clock):
    defn = workflow("""
name: guarded_breach
roles: [community_dispatcher]
initial: waiting
escalation: {ladder: [community]}
states:
  waiting:
    timers:
      - {name: wait, duration: 1h, on_breach: {action: give_up}}
  gave_up: {final: true}
actions:
  give_up: {from: waiting, to: gave_up, roles: [system], guards: [can_escalate]}
""")
    r = Runner(Engine(defn, CALENDARS), clock)
    r.open(COMMUNITY)
    r.advance(hours=1)
    assert r.case.state == "waiting"
    refused = r.events[-1]
    assert refused.type == "BreachActionRefused" and refused.data["guard"] == "can_escalate"


# --- routes -----------------------------------------------------------------------------------


def test_a_dissatisfied_rating_sends_the_case_back_to_handling(run):
    awaiting_feedback(run)
    run.act("rate", REPORTER, {"rating": "dissatisfied"})
    assert run.case.state == "handling"
    assert run.deadline("handle").started_at == run.clock.now()  # rework starts a fresh deadline
    taken = [e for e in run.events if e.type == "ActionTaken"][-1]
    assert (taken.data["from_state"], taken.data["to_state"]) == ("awaiting_feedback", "handling")


@pytest.mark.parametrize("rating", ["satisfied", "basically_satisfied"])
def test_a_satisfied_rating_goes_on_to_review(run, rating):
    awaiting_feedback(run)
    run.act("rate", REPORTER, {"rating": rating})
    assert run.case.state == "reviewing" and run.case.data["rating"] == rating


def test_moves_resolved_by_the_engine_are_those_the_transitions_machine_would_make(shipped):
    """The engine reads the compiled machine's transition table instead of calling Event.trigger."""
    for defn in shipped.values():
        engine = Engine(defn, CALENDARS)
        machine: Machine = engine.machine

        class Model:
            state = None

        for act in defn.actions.values():
            payloads = [{}] + [{r.field: v} for r in act.routes for v in r.values]
            for source in act.sources:
                for payload in payloads:
                    model = Model()
                    model.state = source
                    if act.internal:
                        expected = None
                    else:
                        moved = machine.events[act.name].trigger(model, payload=payload)
                        expected = model.state if moved else None
                    assert engine.destination(source, act.name, payload) == expected, (
                        defn.key, act.name, payload)


def test_every_engine_of_a_definition_shares_one_machine_and_it_dies_with_the_definition(grid_event):
    assert Engine(grid_event, CALENDARS).machine is Engine(grid_event, CALENDARS).machine
    defn = workflow("""
name: short_lived
roles: [community_dispatcher]
initial: a
states: {a: {}, b: {final: true}}
actions: {go: {from: a, to: b, roles: [community_dispatcher]}}
""")
    key = id(defn)
    compile_machine(defn)
    assert key in _MACHINES
    del defn
    gc.collect()
    assert key not in _MACHINES


# --- pauses, extensions, explanation ----------------------------------------------------------


def test_suspending_pauses_the_handling_deadline_and_resuming_gives_back_the_time_left(run):
    handling(run)  # handle: 16 working hours from Monday 10:00
    run.advance(hours=2)  # Monday 12:00: 2 working hours used
    suspend(run)
    paused = run.deadline("handle")
    assert paused.status == "paused" and paused.consumed == 2 * 3600
    assert run.decisions[-1].cancel == ("handle.3",)
    assert {t.deadline_id for t in run.pending.values()} == {"suspension_limit.4"}  # only the pause's ceiling
    assert run.case.paused_since == run.clock.now()
    run.advance_to(at(2026, 3, 12, 9, 0))  # three days later: nothing fires while paused
    assert run.types()[-1] == "DeadlineStarted"
    run.act("resume", DEPT)  # Thursday 09:00 with 14 working hours left
    resumed = run.deadline("handle")
    assert resumed.status == "running" and resumed.generation == paused.generation + 1
    # Thursday 09:00-17:30 holds 7h, Friday the other 7h
    assert local(resumed.due_at) == at(2026, 3, 13, 17, 0)
    assert resumed.pauses == ((at(2026, 3, 9, 12, 0), at(2026, 3, 12, 9, 0)),)
    assert run.case.sla_paused_seconds == (at(2026, 3, 12, 9, 0) - at(2026, 3, 9, 12, 0)).total_seconds()
    assert {t.generation for t in run.pending.values()} == {resumed.generation}


def test_an_approved_extension_moves_the_due_time_and_replans_the_timers(run):
    handling(run)  # due Wednesday 11:00
    run.act("request_extension", DEPT, {"duration": "2wd", "reason": "需协调物业"})
    assert run.case.data["extension_requested"] is True and run.case.state == "handling"
    before = run.deadline("handle")
    run.act("approve_extension", COMMUNITY)
    after = run.deadline("handle")
    # Working days count as everywhere else: to the close of the 2nd working day after the old due.
    assert local(after.due_at) == at(2026, 3, 13, 17, 30)
    assert after.original_due == before.due_at and after.total == before.total + (5 + 7.5 + 7.5) * 3600
    assert after.generation == before.generation + 1
    assert run.types()[-1] == "DeadlineExtended"
    assert {t.generation for t in run.pending.values()} == {after.generation}
    assert local(run.timer("breach").due_at) == at(2026, 3, 13, 17, 30)
    assert "extension_requested" not in run.case.data


def test_an_extension_must_be_asked_for_before_the_deadline_passes(run):
    handling(run)
    run.advance_to(at(2026, 3, 11, 11, 0))
    with pytest.raises(GuardFailed) as err:
        run.act("request_extension", DEPT, {"duration": "1wd", "reason": "太忙"})
    assert err.value.details["guard"] == "not_overdue"


def test_only_one_extension_request_may_be_pending(run):
    handling(run)
    run.act("request_extension", DEPT, {"duration": "4wh", "reason": "需协调"})
    with pytest.raises(GuardFailed) as err:
        run.act("request_extension", DEPT, {"duration": "4wh", "reason": "再要一次"})
    assert err.value.details["guard"] == "no_extension_pending"
    run.act("deny_extension", COMMUNITY, {"reason": "材料已齐"})
    with pytest.raises(GuardFailed):
        run.act("approve_extension", COMMUNITY)


def test_explain_shows_calendar_start_pauses_extensions_and_time_used_and_left(run):
    handling(run)  # dispatched Monday 10:00, acknowledged at once
    run.advance(hours=1)
    suspend(run, "等待配件")
    run.advance(hours=1)
    run.act("resume", DEPT)  # Monday 12:00: lunch follows, so the clock stands until 13:30
    run.act("request_extension", DEPT, {"duration": "4wh", "reason": "配件延误"})
    run.act("approve_extension", STREET)
    [entry] = [e.as_dict() for e in run.engine.explain(run.case, at(2026, 3, 9, 14, 30))]
    assert (entry["deadline"] == "handle.3" and entry["label"] == "处置时限"
            and entry["label_en"] == "Handling deadline")
    assert (entry["calendar"]["name"] == "cn"
            and entry["calendar"]["periods"] == ["08:30-12:00", "13:30-17:30"])
    assert entry["started_at"] == iso(at(2026, 3, 9, 10, 0))
    assert entry["pauses"] == [{"from": iso(at(2026, 3, 9, 11, 0)), "to": iso(at(2026, 3, 9, 12, 0))}]
    assert entry["extensions"][0]["by"] == "4wh" and entry["extensions"][0]["added_s"] == 4 * 3600
    assert entry["original_due"] == iso(at(2026, 3, 11, 11, 0))
    # 1 hour used before the pause, 1 more after lunch; 16 + 4 allowed; the pause hour came back
    assert entry["used_s"] == 2 * 3600 and entry["allowed_s"] == 20 * 3600 and entry["left_s"] == 18 * 3600
    assert entry["current_due"] == iso(at(2026, 3, 11, 17, 30))  # 19 working hours after Monday 12:00
    assert ((entry["status"], entry["light"], entry["overdue"], entry["breaches"])
            == ("running", "green", False, 0))


def test_sla_status_picks_the_most_urgent_running_deadline(run):
    status = run.engine.sla_status(run.case, at(2026, 3, 9, 10, 0))
    assert status == {"light": "green", "left_s": 3 * 3600.0, "due_at": run.deadline("triage").due_at,
                      "deadline": "triage.1"}
    assert run.engine.sla_status(run.case, at(2026, 3, 9, 15, 0))["light"] == "red"


# --- stale timers -----------------------------------------------------------------------------


def test_a_timer_fired_twice_yields_no_events_the_second_time(run):
    warning = run.timer("warning")
    run.clock.set(warning.due_at)
    first = run.fire(warning)
    second = run.engine.fire(run.case, warning, run.clock.now())
    assert first.changed and not second.changed
    assert second.case is run.case and second.schedule == () and second.cancel == ()
    breach = run.timer("breach")
    run.clock.set(breach.due_at)
    run.fire(breach)
    assert not run.engine.fire(run.case, breach, run.clock.now()).changed


def test_a_timer_of_a_previous_generation_yields_nothing(run):
    handling(run)
    old_breach = run.timer("breach")
    run.act("request_extension", DEPT, {"duration": "1wd", "reason": "x"})
    run.act("approve_extension", COMMUNITY)
    assert run.deadline("handle").generation == old_breach.generation + 1
    decision = run.engine.fire(run.case, old_breach, old_breach.due_at)
    assert not decision.changed


def test_a_timer_of_a_deadline_the_case_has_left_behind_yields_nothing(run):
    breach = run.timer("breach")
    dispatched(run)
    assert not run.engine.fire(run.case, breach, breach.due_at).changed
    run.act("acknowledge", DEPT)
    run.act("reply", DEPT, {"result": "done"})
    run.act("rate", REPORTER, {"rating": "satisfied"})
    run.act("verify_pass", GRID)
    assert not run.engine.fire(run.case, breach, breach.due_at + timedelta(days=9)).changed


def test_a_warning_that_arrives_after_the_breach_says_nothing(run):
    warning, breach = run.timer("warning"), run.timer("breach")
    run.clock.set(breach.due_at)
    run.fire(breach)
    assert not run.engine.fire(run.case, warning, run.clock.now()).changed


def test_timers_of_a_paused_deadline_yield_nothing(run):
    handling(run)
    breach = run.timer("breach")
    suspend(run, "x")
    assert not run.engine.fire(run.case, breach, breach.due_at).changed


def test_a_timer_key_round_trips(run):
    t = run.timer("breach")
    assert TimerSpec.parse_key(t.key, t.due_at) == t


# --- the SLA clock never runs backwards -------------------------------------------------------


def test_a_now_earlier_than_the_last_change_is_clamped(run):
    dispatched(run)  # Monday 10:00
    run.advance(hours=1)
    run.act("supervise", SUPERVISOR)  # Monday 11:00
    updated = run.case.updated_at
    earlier = updated - timedelta(minutes=30)  # another process whose clock lags
    decision = run.engine.act(run.case, "acknowledge", DEPT, None, earlier)
    assert decision.case.updated_at == updated
    assert all(e.at == updated for e in decision.events)
    assert decision.case.updated_at == at(2026, 3, 9, 11, 0)
    assert decision.case.deadline("handle.3").started_at == at(2026, 3, 9, 10, 0)  # from dispatch
    stopped = next(e for e in decision.events if e.type == "DeadlineStopped")
    assert stopped.data["used_s"] == 3600.0  # 10:00 to 11:00, not less


def test_explain_and_sla_status_clamp_an_earlier_now_too(run):
    dispatched(run, hours=2)
    run.advance(hours=1)
    run.act("acknowledge", DEPT)  # 12:00, an hour after dispatch
    later = run.engine.explain(run.case, run.case.updated_at)[0].used_s
    earlier = run.engine.explain(run.case, run.case.updated_at - timedelta(hours=5))[0].used_s
    assert earlier == later == 3600
    status = run.engine.sla_status(run.case, run.case.updated_at - timedelta(hours=5))
    assert status["left_s"] == 15 * 3600


def test_a_naive_now_is_refused(run):
    with pytest.raises(ValueError, match="timezone-aware"):
        run.engine.act(run.case, "dispatch", COMMUNITY, {"department": "x"}, MONDAY_9.replace(tzinfo=None))


# --- returning, re-entering -------------------------------------------------------------------


def test_a_returned_case_goes_back_to_its_origin_for_triage_with_a_fresh_deadline(run):
    handling(run)
    run.act("request_extension", DEPT, {"duration": "1wd", "reason": "x"})
    run.act("return_case", DEPT, {"reason_code": "not_our_duty", "reason": "不属于本部门"})
    assert run.case.state == "reported" and run.case.holder_unit == "community-1"
    assert "extension_requested" not in run.case.data and "requested_extension" not in run.case.data
    assert run.deadline("triage").started_at == run.clock.now()


def test_enter_state_restarts_the_deadlines_of_the_current_state(run, grid_event):
    handling(run)
    old = run.deadline("handle")
    decision = run.engine.enter_state(run.case, Actor("admin", "admin"), run.clock.now() + timedelta(hours=1))
    assert [e.type for e in decision.events] == ["DeadlineStopped", "DeadlineStarted"]
    assert decision.events[0].data["reason"] == "restarted"
    assert decision.cancel == (old.id,)
    [new] = decision.case.deadlines
    assert (new.timer == "handle" and new.id != old.id
            and new.started_at == run.clock.now() + timedelta(hours=1))


# --- notifications: texts and recipients from the definition --------------------------------

NOTIFYING = """
name: notifying
version: 1
calendar: 24x7
roles: [community_dispatcher, department_handler, supervisor]
escalation:
  ladder: [community, street]
  labels: {street: {zh: 街道, en: Street}}
initial: reported
states:
  reported:
    holder: community_dispatcher
    timers:
      - name: triage
        label: {zh: 研判时限, en: Triage deadline}
        duration: 2h
        warn_at: [0.5]
        repeat: 1h
        on_breach: {escalate: true, supervise: true, notify: [community_dispatcher]}
    stage: triage
  dispatched: {holder: department_handler}
  closed: {final: true}
actions:
  dispatch:
    label: {zh: 派发, en: Dispatch}
    from: reported
    to: dispatched
    roles: [community_dispatcher]
    fields: {department: unit}
    assign: department
  close: {from: dispatched, to: closed, roles: [department_handler]}
"""

WORDED = NOTIFYING + """
notifications:
  warned: {message: "{number} 的{timer}过半，{due} 到期", to: [$holder, supervisor]}
  breached: {to: [supervisor]}
  escalated: {message: "{number}: {from_level} → {level} ({level_label})"}
"""


def notifying_run(text: str) -> Runner:
    run = Runner(Engine(workflow(text), CALENDARS), ManualClock(MONDAY_9))
    run.open()
    return run


def test_a_workflow_that_says_nothing_about_notifications_gets_the_language_defaults():
    run = notifying_run(NOTIFYING)
    due = run.deadline("triage").due_at.isoformat()
    [warned] = [n for d in run.advance(hours=1) for n in d.notifications]
    assert (warned.kind, warned.roles, warned.message) == ("warned", ("community_dispatcher",),
                                                         f"C-1: 研判时限 即将到期 ({due})")
    notes = [n for d in run.advance(hours=1) for n in d.notifications]
    assert [(n.kind, n.roles, n.message) for n in notes] == [
        ("breached", ("community_dispatcher",), "C-1: 研判时限 已超期"),
        ("supervised", ("supervisor",), "C-1: 已列入督办"),
        ("escalated", ("supervisor",), "C-1: 升级至街道"),
    ]
    notes = [n for d in run.advance(hours=1) for n in d.notifications]
    assert [(n.kind, n.message) for n in notes] == [
        ("breached", "C-1: 研判时限 已超期"), ("alert", "C-1: 已在最高层级(street)，无法再升级，请督办")]
    run.act("dispatch", COMMUNITY, {"department": "housing"})
    [assigned] = run.decisions[-1].notifications
    assert (assigned.kind, assigned.unit, assigned.roles, assigned.message) == (
        "assigned", "housing", ("department_handler",), "C-1: 新案件 派发")


def test_a_workflow_words_its_own_notifications_and_says_who_gets_them():
    run = notifying_run(WORDED)
    due = run.deadline("triage").due_at.isoformat()
    [warned] = [n for d in run.advance(hours=1) for n in d.notifications]
    assert warned.roles == ("community_dispatcher", "supervisor")
    assert warned.message == f"C-1 的研判时限过半，{due} 到期"
    notes = {n.kind: n for d in run.advance(hours=1) for n in d.notifications}
    assert notes["breached"].roles == ("supervisor",) and notes["breached"].message == "C-1: 研判时限 已超期"
    assert notes["escalated"].message == "C-1: community → street (街道)"
    assert notes["supervised"].message == "C-1: 已列入督办"  # not restated: the default


def test_shipped_workflows_speak_with_the_language_defaults(shipped):
    from gridflow.engine.definition import DEFAULT_NOTIFICATIONS

    for defn in shipped.values():
        assert "notifications" not in defn.raw, defn.key  # their stored text (and hash) stays as it was
        assert dict(defn.notifications) == dict(DEFAULT_NOTIFICATIONS), defn.key


# --- explain, typed ---------------------------------------------------------------------------

def test_explain_answers_frozen_dataclasses_whose_dicts_are_the_api_shape(run):
    import dataclasses

    handling(run)
    suspend(run, "等待配件")
    entry = next(e for e in run.engine.explain(run.case, run.clock.now()) if e.timer == "handle")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.light = "red"
    assert entry.label.zh == "处置时限" and entry.status == "paused" and entry.pauses[0].end is None
    assert list(entry.as_dict()) == [
        "deadline", "timer", "label", "label_en", "state", "status", "calendar", "duration", "started_at",
        "original_due", "current_due", "pauses", "extensions", "allowed_s", "used_s", "left_s", "overdue",
        "breaches", "warnings_fired", "light", "calendar_estimated", "calendar_estimated_years"]
    assert entry.as_dict()["pauses"] == [{"from": iso(run.clock.now()), "to": None}]
