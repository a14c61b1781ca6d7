"""Definition validation: every problem, with its file, line and element, all at once.

Each file in tests/unit/broken/ is broken on purpose; a line that should be
reported carries a comment ``# expect: ELEMENT: MESSAGE FRAGMENT``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridflow.engine import DefinitionError, GuardRegistry, build, load_file, load_text
from gridflow.workflows import load_shipped, shipped_paths
from tests.unit.helpers import CALENDARS

BROKEN = Path(__file__).resolve().parent / "broken"
EXPECT = re.compile(r"#\s*expect:\s*(?P<element>[^:]+?):\s*(?P<fragment>.+?)\s*$")

KINDS = {
    "unknown_state.yaml": "an action leads to an undefined state",
    "unknown_role.yaml": "an action names an undeclared role",
    "unreachable_state.yaml": "a state no action leads to",
    "no_way_out.yaml": "a non-final state with no way out",
    "duplicate_action.yaml": "an action defined twice",
    "timer_on_final.yaml": "a final state with a timer",
    "unregistered_guard.yaml": "a guard nobody registered",
    "bad_duration.yaml": "an unparsable duration",
    "unknown_placeholder.yaml": "a notification message with a placeholder the engine does not fill",
    "unknown_recipient.yaml": "a notification to an undeclared role",
    "bad_intake.yaml": "public intake that is not true or false",
}


def expectations(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = EXPECT.search(line)
        if m:
            out.append((number, m["element"], m["fragment"]))
    return out


def problems_of(path: Path) -> list:
    with pytest.raises(DefinitionError) as err:
        load_file(path, calendars=CALENDARS)
    return err.value.problems


@pytest.mark.parametrize("name", sorted(KINDS), ids=lambda n: KINDS[n])
def test_each_kind_of_problem_is_reported_with_file_line_and_element(name):
    path = BROKEN / name
    [(line, element, fragment)] = expectations(path)
    [problem] = problems_of(path)
    assert problem.file == str(path)
    assert problem.line == line
    assert problem.element == element
    assert fragment in problem.message
    assert str(problem).startswith(f"{path}:{line}: [{element}] ")


def test_a_file_with_several_problems_reports_all_of_them_at_once_in_file_order():
    path = BROKEN / "many_problems.yaml"
    expected = expectations(path)
    problems = problems_of(path)
    assert len(expected) == 7
    assert [(p.line, p.element) for p in problems] == [(line, element) for line, element, _ in expected]
    for p, (_, _, fragment) in zip(problems, expected):
        assert fragment in p.message
    with pytest.raises(DefinitionError) as err:
        load_file(path, calendars=CALENDARS)
    assert err.value.message.startswith(f"7 problem(s) in workflow definition {path}:")
    assert err.value.code == "definition_invalid"
    assert err.value.details["problems"][0] == {"file": str(path), "line": 12,
                                                "element": "state reported / timer triage",
                                                "message": problems[0].message}


def test_every_broken_file_is_covered():
    assert {p.name for p in BROKEN.glob("*.yaml")} == set(KINDS) | {"many_problems.yaml"}


def test_every_shipped_workflow_is_valid():
    loaded = load_shipped(CALENDARS)
    assert set(loaded) == {"grid_event", "hotline_request", "dispute_mediation", "special_care_visit",
                           "emergency_incident"}
    older = [p.name for p in shipped_paths() if p.stem.rsplit("_v", 1)[-1].isdigit()]
    assert older == ["special_care_visit_v2.yaml"]  # kept registered for the cases opened on it
    assert len(shipped_paths()) == len(loaded) + len(older)
    for defn in loaded.values():
        assert defn.label.zh != defn.label.en  # labelled in both languages
        for st in defn.states.values():
            assert st.label.zh and st.label.en and st.label.zh != st.label.en, (defn.key, st.name)
        for act in defn.actions.values():
            assert act.label.zh != act.label.en, (defn.key, act.name)


def test_a_role_listed_on_its_own_line_is_reported_on_that_line():
    text = """\
name: roles_on_lines
roles: [community_dispatcher]
initial: a
states:
  a: {}
  b: {final: true}
actions:
  go:
    from: a
    to: b
    roles:
      - community_dispatcher
      - night_watch
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "roles.yaml", calendars=CALENDARS)
    [p] = err.value.problems
    assert (p.line, p.element) == (13, "action go") and "night_watch" in p.message


@pytest.mark.parametrize("snippet, line, fragment", [
    ("initial: done", 3, "initial state 'done' is final"),
    ("initial: nowhere", 3, "initial state 'nowhere' is not one of the states"),
])
def test_the_initial_state_must_exist_and_not_be_final(snippet, line, fragment):
    text = f"""\
name: initial_checks
roles: [community_dispatcher]
{snippet}
states:
  a: {{}}
  done: {{final: true}}
actions:
  go: {{from: a, to: done, roles: [community_dispatcher]}}
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "initial.yaml", calendars=CALENDARS)
    assert any(p.line == line and fragment in p.message for p in err.value.problems), err.value.problems


def test_a_route_testing_a_value_outside_the_choices_is_reported():
    text = """\
name: impossible_route
roles: [resident]
initial: a
states:
  a: {}
  b: {}
  done: {final: true}
actions:
  rate:
    from: a
    to: done
    routes:
      - when: {rating: furious}
        to: b
    roles: [resident]
    fields:
      rating: {type: choice, required: true, choices: [happy, unhappy]}
  finish: {from: b, to: done, roles: [resident]}
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "route.yaml", calendars=CALENDARS)
    [p] = err.value.problems
    assert p.line == 13 and "could never be taken" in p.message


def test_a_label_broken_by_a_comma_in_a_flow_mapping_is_reported():
    text = """\
name: comma
roles: [resident]
initial: a
states:
  a: {label: {zh: 甲, en: First, second}}
  done: {final: true}
actions:
  go: {from: a, to: done, roles: [resident]}
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "comma.yaml", calendars=CALENDARS)
    [p] = err.value.problems
    assert (p.line, p.element) == (5, "state a") and "label" in p.message


def test_yaml_that_does_not_parse_is_reported_with_its_line():
    with pytest.raises(DefinitionError) as err:
        load_text("name: x\nstates: [a\nactions: {}\n", "bad.yaml")
    [p] = err.value.problems
    assert p.file == "bad.yaml" and p.line == 3 and "not valid YAML" in p.message


def test_plain_python_data_is_checked_the_same_way_without_lines():
    with pytest.raises(DefinitionError) as err:
        build({"name": "py", "roles": ["resident"], "initial": "a",
               "states": {"a": {}, "done": {"final": True}},
               "actions": {"go": {"from": "a", "to": "done", "roles": ["resident"], "guards": ["nope"]}}})
    [p] = err.value.problems
    assert p.file == "<python>" and p.line is None and p.element == "action go"


def test_guards_and_calendars_are_checked_against_what_is_registered():
    text = """\
name: registries
roles: [resident]
initial: a
calendar: moon
states:
  a: {}
  done: {final: true}
actions:
  go: {from: a, to: done, roles: [resident], guards: [full_moon]}
"""
    with pytest.raises(DefinitionError) as err:
        load_text(text, "reg.yaml", calendars=CALENDARS)
    assert {p.line for p in err.value.problems} == {4, 9}
    guards = GuardRegistry({"full_moon": lambda ctx: True})
    defn = load_text(text, "reg.yaml", calendars=["cn", "24x7", "moon"], guards=guards)
    assert defn.calendar == "moon" and defn.actions["go"].guards == ("full_moon",)


NOTIFIED = """name: notified
version: 1
roles: [community_dispatcher]
initial: reported
states:
  reported: {}
  closed: {final: true}
actions:
  close: {from: reported, to: closed, roles: [community_dispatcher]}
notifications:
"""


@pytest.mark.parametrize("entry, element, fragment", [
    ("  warned: {message: '{number: 到期'}", "notification warned", "message is not a valid template"),
    ("  warned: {to: [$notify]}", "notification warned", "unknown recipient '$notify' (known here: $holder)"),
    ("  alert: {message: '{timer}'}", "notification alert", "unknown placeholder {timer} in the message"),
    ("  alert: {message: 42}", "notification alert", "message must be text"),
    ("  alert: {text: hello}", "notification alert", "unknown key 'text' (allowed: message, to)"),
    ("  closed: {to: [community_dispatcher]}", "notifications", "unknown key 'closed' (allowed: alert,"),
    ("  escalated: hello", "notification escalated",
     "a notification is a mapping with 'message' and/or 'to'"),
])
def test_notifications_are_checked_for_placeholders_recipients_and_kinds(entry, element, fragment):
    with pytest.raises(DefinitionError) as err:
        load_text(NOTIFIED + entry + "\n", "<test>", calendars=CALENDARS)
    [problem] = err.value.problems
    assert (problem.line, problem.element) == (11, element) and fragment in problem.message
