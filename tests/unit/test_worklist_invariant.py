"""Every open case is on at least one worklist of a role that has an action on it — over every shipped
workflow, random actions and timer firings, reports inside and outside every grid.

"On a worklist of role R" is :func:`gridflow.engine.worklists.worklist_roles`, the rule the service's
worklist query is built from; escalations are routed with the service's own pure routing
(:func:`~gridflow.engine.worklists.route_escalation` / :func:`~gridflow.engine.worklists.routed`) over a
small organisation tree. "Has an action" means the engine accepts one of that role's actions, with a
valid payload, from a caller at the unit where the case is on its worklist.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridflow.engine import Actor, Engine, GridflowError, ManualClock
from gridflow.engine.case import CaseSnapshot, Decision
from gridflow.engine.definition import ActionDef, FieldSpec
from gridflow.engine.worklists import (
    ESCALATION_UNITS, CasePlace, route_escalation, routed, worklist_roles, worklist_rule,
)
from gridflow.workflows import load_shipped
from tests.unit.helpers import CALENDARS, MONDAY_9, Runner

DEFINITIONS = load_shipped(CALENDARS)
ENGINES = {name: Engine(defn, CALENDARS) for name, defn in DEFINITIONS.items()}

#: code -> (kind, parent): a city, one district with a street, a community and a grid, and departments.
TREE = {"C": ("city", None), "D": ("district", "C"), "S": ("street", "D"), "M": ("community", "S"),
        "G": ("grid", "M"), "dept-1": ("department", "D"), "dept-2": ("department", "D")}
#: Where a report lands: in a grid (held by its community), or outside every grid (the street's or the
#: district's triage pool, held by that unit).
ORIGINS = {"grid": ("G", "M"), "street": ("S", "S"), "district": ("D", "D")}


def place(code: str | None) -> list[tuple[str, str]]:
    out = []
    while code is not None:
        kind, parent = TREE[code]
        out.append((code, kind))
        code = parent
    return out


def value_for(spec: FieldSpec, draw_index: int) -> object:
    if spec.type == "choice":
        return spec.choices[draw_index % len(spec.choices)]
    if spec.type == "unit":
        units = ["dept-1", "dept-2"] if spec.name == "department" else ["dept-1", "dept-2", "S"]
        return units[draw_index % len(units)]
    if spec.type == "units":  # co-handlers (主办/协办): none, one or two other departments
        return [[], ["dept-2"], ["dept-2", "dept-3"]][draw_index % 3]
    return {"string": "王调解员", "text": "说明", "case": "C-2", "integer": 1, "number": 1.0,
            "boolean": bool(draw_index % 2), "duration": "4wh",
            "datetime": "2026-03-20T09:00:00+08:00"}[spec.type]


def payload_for(act: ActionDef, draw_index: int = 0) -> dict:
    return {f.name: value_for(f, draw_index) for f in act.fields if f.required or draw_index % 3 == 0}


def actor_for(role: str, case: CaseSnapshot, unit: str | None) -> Actor:
    if role == "resident":
        return Actor(f"resident:{case.number}", "resident", None)
    return Actor(f"{role}-at-{unit}", role, unit)


def units_to_try(case: CaseSnapshot) -> list[str | None]:
    chain = list(case.data.get(ESCALATION_UNITS) or [])
    return list(dict.fromkeys(chain[:1] + [case.holder_unit] + ["C", "D", "S", "M", "G"]))


def settle(defn, decision: Decision) -> CaseSnapshot:
    """What the service does after the engine decided: route an escalation to a unit."""
    snap = decision.case
    if decision.escalated_to:
        snap = routed(snap, route_escalation(place(snap.origin_unit), decision.escalated_to), defn)
    return snap


class Life:
    def __init__(self, name: str, origin: str) -> None:
        self.defn = DEFINITIONS[name]
        self.engine = ENGINES[name]
        self.runner = Runner(self.engine, ManualClock(MONDAY_9))
        origin_unit, holder = ORIGINS[origin]
        self.apply(self.engine.open("C-1", Actor("op", "hotline_operator", "D"), MONDAY_9,
                                    origin_unit=origin_unit, holder_unit=holder))

    @property
    def case(self) -> CaseSnapshot:
        return self.runner.case

    def apply(self, decision: Decision) -> None:
        self.runner.apply(decision)
        self.runner.case = settle(self.defn, decision)

    def act(self, index: int, role_index: int, unit_index: int) -> None:
        names = [a for a in self.engine.allowed_actions(self.case)
                 if "system" not in self.defn.actions[a].roles]
        if not names:
            return
        act = self.defn.actions[names[index % len(names)]]
        role = act.roles[role_index % len(act.roles)]
        units = units_to_try(self.case)
        actor = actor_for(role, self.case, units[unit_index % len(units)])
        try:
            decision = self.engine.act(self.case, act.name, actor, payload_for(act, index),
                                       self.runner.clock.now())
        except GridflowError:
            return
        self.apply(decision)

    def advance(self, minutes: int) -> None:
        self.runner.clock.advance(timedelta(minutes=minutes))
        while due := self.runner.due():
            self.runner.pending.pop(due[0].key, None)
            self.apply(self.engine.fire(self.case, due[0], self.runner.clock.now()))

    def has_action(self, role: str) -> bool:
        for name in self.engine.allowed_actions(self.case, role):
            act = self.defn.actions[name]
            for unit in units_to_try(self.case):
                for i in range(3):
                    try:
                        self.engine.act(self.case, name, actor_for(role, self.case, unit),
                                        payload_for(act, i), self.runner.clock.now())
                        return True
                    except GridflowError:
                        continue
        return False

    def check(self) -> None:
        if self.case.is_closed:
            return
        where = CasePlace(frozenset(k for _, k in place(self.case.origin_unit)),
                          TREE.get(self.case.holder_unit, (None,))[0])
        roles = worklist_roles(self.defn, self.case, where)
        working = [r for r in roles if self.has_action(r)]
        case = self.case
        assert working, (f"{self.defn.key}: open case in {case.state!r} (level {case.escalation_level}, "
                         f"holder {case.holder_unit}) is on the worklists of {sorted(roles)} and none "
                         f"of them has an action on it")


STEP = st.one_of(
    st.tuples(st.just("act"), st.integers(0, 50), st.integers(0, 7), st.integers(0, 7)),
    st.tuples(st.just("wait"), st.sampled_from([30, 240, 60 * 20, 60 * 24 * 3, 60 * 24 * 12]),
              st.just(0), st.just(0)),
)


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(origin=st.sampled_from(sorted(ORIGINS)), steps=st.lists(STEP, max_size=25))
def test_every_open_case_is_on_a_worklist_of_a_role_that_can_act_on_it(name, origin, steps):
    life = Life(name, origin)
    life.check()
    for kind, a, b, c in steps:
        if kind == "act":
            life.act(a, b, c)
        else:
            life.advance(a)
        life.check()


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_every_escalation_level_has_handlers_with_a_worklist_there(name):
    defn = DEFINITIONS[name]
    for i, level in enumerate(defn.escalation.levels[1:], start=1):
        handlers = defn.escalation.handlers_at(i)
        assert handlers, f"{defn.key}: nobody works level {level}"
        assert all(i in worklist_rule(defn, r).escalation_levels for r in handlers)


def test_routing_falls_back_to_the_nearest_unit_above_and_says_so():
    district_only = [("D", "district"), ("C", "city")]  # a report filed at the district (outside every grid)
    route = route_escalation(district_only, "street")
    assert (route.unit, route.unit_kind, route.chain) == ("D", "district", ("D", "C"))
    assert "no street unit" in route.note
    assert route_escalation(place("G"), "street").unit == "S"
    assert route_escalation(place("G"), "street").note is None
    assert route_escalation([("X", "grid")], "district").unit is None


# --- who works each level, and who may act from above ----------------------------------------------

LADDER_FLOW = """
name: ladder_check
roles: [community_dispatcher, street_dispatcher, supervisor]
escalation:
  ladder: [community, street, district]
  handlers: {HANDLERS}
initial: open
states:
  open: {label: {zh: 开, en: Open}, stage: s, holder: community_dispatcher}
  done: {label: {zh: 结, en: Done}, stage: s, final: true}
actions:
  close: {from: open, to: done, roles: [community_dispatcher], kind: close}
"""


def test_every_ladder_level_needs_handlers_among_the_workflows_roles():
    from gridflow.engine import DefinitionError
    from tests.unit.helpers import workflow

    with pytest.raises(DefinitionError) as err:
        workflow(LADDER_FLOW.replace("{HANDLERS}", "{community: [community_dispatcher], street: [mediator],"
                                                   " city: [supervisor]}"))
    text = str(err.value)
    assert "handler role 'mediator' is not one of the workflow's roles" in text
    assert "handlers for unknown level 'city'" in text
    assert "level 'district' has no handlers" in text
    ok = workflow(LADDER_FLOW.replace("{HANDLERS}", "{community: [community_dispatcher], "
                                                    "street: [street_dispatcher], district: [supervisor]}"))
    assert ok.escalation.handlers_at(2) == ("supervisor",)
    assert ok.actions["close"].kind == "close"


def test_without_handlers_each_level_is_worked_by_its_dispatcher_or_else_the_supervisor():
    from tests.unit.helpers import workflow

    defn = workflow(LADDER_FLOW.replace("  handlers: {HANDLERS}\n", ""))
    assert dict(defn.escalation.handlers) == {"community": ("community_dispatcher",),
                                              "street": ("street_dispatcher",), "district": ("supervisor",)}


def test_an_unknown_action_kind_is_refused():
    from gridflow.engine import DefinitionError
    from tests.unit.helpers import workflow

    with pytest.raises(DefinitionError, match="unknown kind 'teleport'"):
        workflow(LADDER_FLOW.replace("  handlers: {HANDLERS}\n", "").replace("kind: close", "kind: teleport"))


def test_upper_level_actions_are_for_the_escalation_unit_or_above_it():
    from gridflow.engine.errors import GuardFailed

    life = Life("grid_event", "grid")
    life.runner.clock.advance(timedelta(minutes=1))
    life.apply(life.engine.act(life.case, "dispatch", Actor("cd", "community_dispatcher", "M"),
                               {"department": "dept-1"}, life.runner.clock.now()))
    street = Actor("sd", "street_dispatcher", "S")
    with pytest.raises(GuardFailed, match="has not been escalated"):
        life.engine.act(life.case, "take_over", street, {"reason": "x"}, life.runner.clock.now())
    breach = min(t.due_at for t in life.runner.pending.values() if t.kind == "breach")
    life.advance(int((breach - life.runner.clock.now()).total_seconds() // 60) + 1)  # escalated to the street
    assert life.case.escalation_level == 1 and life.case.data[ESCALATION_UNITS] == ["S", "D", "C"]
    assert "street_dispatcher" in worklist_roles(life.defn, life.case, CasePlace(frozenset(), "department"))
    with pytest.raises(GuardFailed, match="only the escalation unit S"):
        life.engine.act(life.case, "take_over", Actor("sd2", "street_dispatcher", "S2"), {"reason": "x"},
                        life.runner.clock.now())
    city = Actor("sv", "supervisor", "C")  # a unit above the escalation unit may act too
    taken = life.engine.act(life.case, "take_over", city, {"reason": "x"}, life.runner.clock.now())
    assert (taken.case.state, taken.case.holder_unit) == ("taken_over", "C")
    moved = life.engine.act(life.case, "reassign", street, {"department": "dept-2", "reason": "x"},
                            life.runner.clock.now())
    assert (moved.case.state, moved.case.holder_unit) == ("dispatched", "dept-2")


def test_a_resident_token_identity_rates_only_its_own_case():
    from gridflow.engine.errors import GuardFailed

    life = Life("hotline_request", "grid")
    defn, engine = life.defn, life.engine
    snap = life.case
    for action, actor, payload in [
        ("dispatch", Actor("op", "hotline_operator", "D"), {"unit": "dept-1", "urgency": "general"}),
        ("sign_for", Actor("dh", "department_handler", "dept-1"), {}),
        ("contact_requester", Actor("dh", "department_handler", "dept-1"), {"reached": True}),
        ("reply", Actor("dh", "department_handler", "dept-1"), {"result": "ok"}),
        ("call_back", Actor("op", "hotline_operator", "D"), {"reached": True}),
    ]:
        snap = engine.act(snap, action, actor, payload, MONDAY_9 + timedelta(minutes=5)).case
    assert snap.state == "awaiting_rating" and defn.name == "hotline_request"
    with pytest.raises(GuardFailed):
        engine.act(snap, "rate", Actor("resident:C-9", "resident"), {"rating": "satisfied"},
                   MONDAY_9 + timedelta(minutes=6))
    done = engine.act(snap, "rate", Actor("resident:C-1", "resident"), {"rating": "satisfied"},
                      MONDAY_9 + timedelta(minutes=6))
    assert done.case.state == "closed"
