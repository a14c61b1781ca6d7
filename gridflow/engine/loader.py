"""Load a workflow definition from YAML (or plain Python data) and validate it.

Validation never stops at the first problem: it collects every one, each with
the file, the line and the element it concerns, and raises a single
:class:`DefinitionError`. The same checks run for YAML and Python data.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from .definition import WorkflowDefinition
from .errors import DefinitionError, Problem
from .load_actions import parse_actions
from .load_common import Collector, Path_, Scope, unknown_keys
from .load_states import parse_states
from .load_workflow import (
    check_graph, parse_escalation, parse_header, parse_intake, parse_limits, parse_notifications, parse_roles,
    parse_stages, role_set,
)

_TOP_KEYS = {"name", "version", "label", "description", "initial", "roles", "stages", "states", "actions",
             "escalation", "calendar", "notifications", "intake", "limits"}


# --- YAML with line numbers -------------------------------------------------------------------

def parse_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML into plain data plus a map from element path to 1-based line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise DefinitionError([Problem(f"not valid YAML: {getattr(exc, 'problem', exc)}", "", source, line)],
                              source) from None
    lines: dict[Path_, int] = {}
    dupes: list[Problem] = []
    constructor = yaml.SafeLoader("")

    def walk(n: yaml.Node | None, path: Path_) -> Any:
        if n is None:
            return None
        lines.setdefault(path, n.start_mark.line + 1)  # a mapping key names the line of its element
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for k, v in n.value:
                key = constructor.construct_object(k, deep=True)
                if key in out:
                    kind = {"actions": "action", "states": "state"}.get(path[-1] if path else "", "key")
                    first = lines[path + (key,)]
                    dupes.append(Problem(f"duplicate {kind} {key!r} (first defined on line {first})",
                                         f"{kind} {key}", source, k.start_mark.line + 1))
                    continue
                lines[path + (key,)] = k.start_mark.line + 1
                out[key] = walk(v, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(item, path + (i,)) for i, item in enumerate(n.value)]
        return constructor.construct_object(n, deep=True)

    data = walk(node, ())
    if dupes:
        # Keep going: other problems are reported together with the duplicates.
        lines[("__duplicates__",)] = 0
        data = {"__duplicates__": dupes, **(data if isinstance(data, dict) else {"__not_mapping__": data})}
    return data, lines


def load_file(path: str | Path, *, guards=None, calendars=None) -> WorkflowDefinition:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError([Problem(f"cannot read file: {exc.strerror}", "", str(p))], str(p)) from None
    data, lines = parse_yaml(text, str(p))
    return build(data, source=str(p), lines=lines, guards=guards, calendars=calendars)


def load_text(text: str, source: str = "<string>", *, guards=None, calendars=None) -> WorkflowDefinition:
    data, lines = parse_yaml(text, source)
    return build(data, source=source, lines=lines, guards=guards, calendars=calendars)


# --- building and validating ------------------------------------------------------------------

def build(data: Any, *, source: str = "<python>", lines: Mapping[Path_, int] | None = None, guards=None,
          calendars=None) -> WorkflowDefinition:
    """Validate plain data and build the frozen definition, or raise with every problem.

    ``guards`` is a GuardRegistry (default: the built-in guards); ``calendars`` the calendar
    names definitions may use, or a CalendarRegistry (default: "cn" and "24x7").
    """
    from .guards import default_guards

    guards = guards if guards is not None else default_guards()
    c = Collector(source, lines or {})
    data = _top_mapping(c, data, source)
    unknown_keys(c, data, _TOP_KEYS, (), "workflow")
    calendar_names = _calendar_names(calendars)
    name, version, label, default_calendar = parse_header(c, data, calendar_names)
    roles = parse_roles(c, data)
    stages = parse_stages(c, data)
    ladder = parse_escalation(c, data)
    states_raw, actions_raw = _sections(c, data)
    scope = Scope(c, guards, calendar_names, default_calendar, role_set(roles),
                  frozenset(map(str, states_raw)))
    # Actions are parsed before states so breach actions can be checked against them.
    actions = parse_actions(scope, actions_raw)
    states = parse_states(scope, states_raw, stages, actions)
    notifications = parse_notifications(scope, data)
    intake = parse_intake(c, data)
    limits = parse_limits(c, data)
    initial = data.get("initial")
    check_graph(c, initial, states, actions)
    if c.problems:
        raise DefinitionError(sorted(c.problems, key=lambda p: p.line or 0), source)
    return WorkflowDefinition(
        name=name, version=version, label=label, initial=initial, states=MappingProxyType(states),
        actions=MappingProxyType(actions), stages=MappingProxyType(stages), escalation=ladder, roles=roles,
        calendar=default_calendar, description=str(data.get("description", "")), source=source,
        notifications=notifications, intake=intake, limits=limits, raw=MappingProxyType(dict(data)),
    )


def _calendar_names(calendars: Any) -> frozenset[str]:
    if calendars is None:
        return frozenset({"cn", "24x7"})
    return frozenset(calendars.names() if hasattr(calendars, "names") else calendars)  # names, or a registry


def _top_mapping(c: Collector, data: Any, source: str) -> dict:
    """The definition as a dict, with the duplicates the YAML parse found already reported."""
    if not isinstance(data, dict):
        c.add((), "workflow", "a workflow definition must be a mapping")
        raise DefinitionError(c.problems, source)
    data = dict(data)
    c.problems.extend(data.pop("__duplicates__", []))
    if "__not_mapping__" in data:
        c.add((), "workflow", "a workflow definition must be a mapping")
        raise DefinitionError(c.problems, source)
    return data


def _sections(c: Collector, data: dict) -> tuple[dict, dict]:
    states_raw = data.get("states")
    if not isinstance(states_raw, dict) or not states_raw:
        c.add(("states",), "workflow", "states must be a non-empty mapping")
        states_raw = {}
    actions_raw = data.get("actions")
    if not isinstance(actions_raw, dict):
        c.add(("actions",), "workflow", "actions must be a mapping of action name to its definition")
        actions_raw = {}
    return states_raw, actions_raw
