"""Random lives of cases, one state machine per shipped workflow, with invariants checked after every step.

Hypothesis drives actions (mostly ones open in the current state, with
valid-ish payloads and mostly allowed roles, sometimes not), moves the clock by
minutes to weeks, fires due timers (in order, one at a time, or late), fires
stale and duplicate timers again, and now and then acts with a clock that lags
behind the case. After each step the snapshot, the pending timers (kept the way
the service keeps them) and the whole event history must still agree.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gridflow.engine import Actor, Engine, GridflowError, ManualClock, TimerSpec
from gridflow.engine.definition import CASE_LEVEL, ActionDef, FieldSpec
from gridflow.workflows import load_shipped
from tests.unit.helpers import CALENDARS, MONDAY_9, Runner

DEFINITIONS = load_shipped(CALENDARS)
ENGINES = {name: Engine(defn, CALENDARS) for name, defn in DEFINITIONS.items()}

VALID = {
    "string": st.sampled_from(["王调解员", "x"]),
    "text": st.sampled_from(["已处理", "说明"]),
    "unit": st.sampled_from(["housing", "community-1", "drainage"]),
    "units": st.lists(st.sampled_from(["housing", "drainage", "water"]), max_size=2),
    "case": st.sampled_from(["C-2", "C-3"]),
    "integer": st.integers(0, 5),
    "number": st.floats(0, 100, allow_nan=False),
    "boolean": st.booleans(),
    "duration": st.sampled_from(["4wh", "1wd", "2h", "3d", "30m"]),
    "datetime": st.sampled_from(["2026-03-20T09:00:00+08:00"]),
}
STEPS = st.one_of(
    st.integers(1, 90).map(lambda m: timedelta(minutes=m)),
    st.integers(2, 48).map(lambda h: timedelta(hours=h)),
    st.integers(3, 40).map(lambda d: timedelta(days=d)),
)


def valid_value(spec: FieldSpec):
    return st.sampled_from(spec.choices) if spec.type == "choice" else VALID[spec.type]


@st.composite
def payloads(draw, act: ActionDef) -> dict:
    payload = {}
    for spec in act.fields:
        if spec.required or draw(st.booleans()):
            payload[spec.name] = draw(valid_value(spec))
    if draw(st.integers(0, 9)) == 0:  # now and then, something wrong with it
        trouble = draw(st.sampled_from(["unknown", "wrong_type", "missing"]))
        if trouble == "unknown":
            payload["bogus"] = 1
        elif trouble == "wrong_type" and act.fields:
            payload[draw(st.sampled_from(act.fields)).name] = ["not", "a", "value"]
        elif payload:
            payload.pop(draw(st.sampled_from(sorted(payload))))
    return payload


class CaseLife(RuleBasedStateMachine):
    workflow = "grid_event"

    def __init__(self) -> None:
        super().__init__()
        self.engine = ENGINES[self.workflow]
        self.defn = self.engine.definition
        self.clock = ManualClock(MONDAY_9)
        self.run = Runner(self.engine, self.clock)
        self.run.open(Actor("reporter", self.defn.roles[0], "community-1"), origin_unit="community-1")
        self.seen_timers: dict[str, TimerSpec] = dict(self.run.pending)
        self.last_fired: TimerSpec | None = None
        self.last_updated = self.run.case.updated_at
        self.last_paused = 0.0
        self.consumed: dict[str, float] = {}
        self.used: dict[str, float] = {}

    # --- steps --------------------------------------------------------------------------------

    def _record(self, before: int) -> None:
        for d in self.run.decisions[before:]:
            for t in d.schedule:
                self.seen_timers[t.key] = t

    @rule(data=st.data())
    def take_an_action(self, data) -> None:
        case = self.run.case
        open_here = self.engine.allowed_actions(case)
        names = list(self.defn.actions)
        name = data.draw(st.sampled_from(open_here) if open_here and data.draw(st.integers(0, 4)) else
                         st.sampled_from(names), label="action")
        act = self.defn.actions[name]
        roles = list(act.roles) if data.draw(st.integers(0, 4)) else list(self.defn.roles) + ["system"]
        role = data.draw(st.sampled_from(roles), label="role")
        unit = data.draw(st.sampled_from(["unit-1", "housing", "drainage", "water"]), label="unit")
        actor = Actor(data.draw(st.sampled_from(["reporter", "someone"])), role, unit)
        payload = data.draw(payloads(act), label="payload")
        lag = data.draw(st.sampled_from([timedelta(0)] * 9 + [timedelta(minutes=45)]), label="clock lag")
        before = len(self.run.decisions)
        try:
            decision = self.engine.act(case, name, actor, payload, self.clock.now() - lag)
        except GridflowError:
            return  # refused: nothing to apply, the snapshot is untouched (it is frozen)
        self.run.apply(decision)
        self._record(before)

    @rule(step=STEPS)
    def let_time_pass(self, step: timedelta) -> None:
        self.clock.advance(step)

    @rule()
    def fire_everything_due(self) -> None:
        before = len(self.run.decisions)
        fired = self.run.run_due()
        if fired:
            self.last_fired = None
        self._record(before)

    @precondition(lambda self: self.run.due())
    @rule()
    def fire_the_next_due_timer(self) -> None:
        timer = self.run.due()[0]
        before = len(self.run.decisions)
        self.run.fire(timer)
        self.last_fired = timer
        self._record(before)

    @precondition(lambda self: self.last_fired is not None)
    @rule()
    def fire_the_same_timer_again(self) -> None:
        decision = self.engine.fire(self.run.case, self.last_fired, self.clock.now())
        assert not decision.changed and decision.case is self.run.case

    @precondition(lambda self: any(k not in self.run.pending for k in self.seen_timers))
    @rule(data=st.data())
    def fire_a_timer_that_is_no_longer_pending(self, data) -> None:
        stale = sorted(k for k in self.seen_timers if k not in self.run.pending)
        timer = self.seen_timers[data.draw(st.sampled_from(stale), label="stale timer")]
        decision = self.engine.fire(self.run.case, timer, max(self.clock.now(), timer.due_at))
        assert not decision.changed, (timer, decision.events)

    # --- invariants ---------------------------------------------------------------------------

    def _runs_here(self, d, state: str) -> bool:
        """A deadline runs in its own state, or in one its timer carries on into (``continues_in``)."""
        tdef = self.defn.timer(d.state, d.timer)
        return d.state == state or (tdef is not None and state in tdef.continues_in)

    @invariant()
    def the_state_is_defined_and_closing_is_final(self) -> None:
        case = self.run.case
        state = self.defn.states[case.state]
        assert case.is_closed == state.final
        if state.final:
            assert case.deadlines == () and self.run.pending == {}
            assert case.outcome == state.outcome

    @invariant()
    def every_pending_timer_belongs_to_a_running_deadline_of_the_current_state(self) -> None:
        case = self.run.case
        for t in self.run.pending.values():
            d = case.deadline(t.deadline_id)
            assert d is not None and d.is_running and d.generation == t.generation, (t, d)
            assert d.state == CASE_LEVEL or self._runs_here(d, case.state), (d, case.state)

    @invariant()
    def every_open_order_and_part_has_its_case_level_deadlines_running(self) -> None:
        case = self.run.case
        running = {d.id for d in case.deadlines if d.state == CASE_LEVEL and d.is_running}
        assert running == {d.id for d in case.deadlines if d.state == CASE_LEVEL}  # never paused
        expected = set()
        for order in (case.data.get("orders") or {}).values():
            if order["status"] == "open":
                expected.add(order["deadline"])
        for part in (case.data.get("parts") or {}).values():
            if part["status"] == "dispatched":
                expected.add(part["sign_deadline"])
            if part["status"] in ("dispatched", "signed"):
                expected.add(part["answer_deadline"])
        assert running == expected
        if case.is_closed:
            assert not expected

    @invariant()
    def every_running_deadline_has_its_next_breach_pending(self) -> None:
        case = self.run.case
        pausing = self.defn.states[case.state].pauses_sla
        for d in case.deadlines:
            if not d.is_running:
                assert pausing, d
                continue
            assert d.state == CASE_LEVEL or self._runs_here(d, case.state), (d, case.state)
            if d.next_breach_at is not None:
                breach = [t for t in self.run.pending.values()
                          if t.deadline_id == d.id and t.kind == "breach"]
                assert [(t.seq, t.due_at) for t in breach] == [(d.breaches + 1, d.next_breach_at)], (
                    d, breach)

    @invariant()
    def the_sla_clock_never_runs_backwards(self) -> None:
        case = self.run.case
        assert case.updated_at >= self.last_updated
        self.last_updated = case.updated_at
        assert case.sla_paused_seconds >= self.last_paused
        self.last_paused = case.sla_paused_seconds
        # Read the SLA clock at the case's own time: an action that arrives with a lagging clock is
        # recorded at the case's last moment, so readings taken at some later wall-clock instant before
        # it are not part of the record and may legitimately exceed what gets recorded.
        explained = {e.deadline: e.as_dict() for e in self.engine.explain(case, case.updated_at)}
        for d in case.deadlines:
            assert d.consumed >= self.consumed.get(d.id, 0.0)
            self.consumed[d.id] = d.consumed
            used = explained[d.id]["used_s"]
            assert used >= self.used.get(d.id, 0.0) - 1e-3
            self.used[d.id] = used

    @invariant()
    def every_event_is_accounted_for(self) -> None:
        case, events = self.run.case, self.run.events
        types = Counter(e.type for e in events)
        started = [e.data["deadline"] for e in events if e.type == "DeadlineStarted"]
        stopped = [e.data["deadline"] for e in events if e.type == "DeadlineStopped"]
        assert len(set(started)) == len(started) == case.deadline_seq
        assert len(set(stopped)) == len(stopped) and set(stopped) <= set(started)
        assert {d.id for d in case.deadlines} == set(started) - set(stopped)
        assert case.breach_count == types["DeadlineBreached"]
        level = 0  # each escalation one level up, each de-escalation back to the first level
        for e in events:
            level = level + 1 if e.type == "CaseEscalated" else 0 if e.type == "CaseDeescalated" else level
        assert case.escalation_level == level <= case.escalation_top
        assert types["CaseSupervised"] == int(case.supervised)
        assert types["CaseClosed"] == int(case.is_closed) and types["CaseReported"] == 1
        assert all(e.at <= case.updated_at for e in events)


MACHINE_SETTINGS = settings(max_examples=50, stateful_step_count=40, deadline=None)


def _life_of(name: str):
    machine = type(f"{name.title().replace('_', '')}Life", (CaseLife,), {"workflow": name})
    case = machine.TestCase
    case.settings = MACHINE_SETTINGS
    return case


TestGridEventLife = _life_of("grid_event")
TestHotlineRequestLife = _life_of("hotline_request")
TestDisputeMediationLife = _life_of("dispute_mediation")
TestSpecialCareVisitLife = _life_of("special_care_visit")
TestEmergencyIncidentLife = _life_of("emergency_incident")


def test_every_shipped_workflow_has_a_random_life():
    assert {c.__qualname__ for c in (TestGridEventLife, TestHotlineRequestLife, TestDisputeMediationLife,
                                     TestSpecialCareVisitLife, TestEmergencyIncidentLife)}
    assert set(ENGINES) == {"grid_event", "hotline_request", "dispute_mediation", "special_care_visit",
                            "emergency_incident"}
