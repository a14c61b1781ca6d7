"""Load a workflow definition from YAML (or plain Python data) and validate it.

Validation never stops at the first problem: it collects every one, each with
the file, the line and the element it concerns, and raises a single
:class:`DefinitionError`. The same checks run for YAML and Python data.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from .definition import (
    FIELD_TYPES, KNOWN_ROLES, OUTCOMES, SYSTEM_ROLE, ActionDef, BreachPolicy, EscalationLadder,
    FieldSpec, Label, Route, StateDef, TimerDef, WorkflowDefinition,
)
from .durations import Duration, DurationError
from .errors import DefinitionError, Problem

Path_ = tuple[Any, ...]
_TOP_KEYS = {"name", "version", "label", "description", "initial", "roles", "stages", "states", "actions",
             "escalation", "calendar"}
_STATE_KEYS = {"label", "stage", "final", "pauses_sla", "holder", "timers", "outcome"}
_TIMER_KEYS = {"name", "label", "duration", "calendar", "warn_at", "on_breach", "repeat", "purpose"}
_BREACH_KEYS = {"escalate", "supervise", "action", "notify"}
_ACTION_KEYS = {"label", "from", "to", "routes", "roles", "guards", "fields", "assign", "set", "clear", "extend",
                "escalate", "supervise"}
_FIELD_KEYS = {"type", "required", "choices", "label", "max_length"}
ASSIGN_ORIGIN = "origin"


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_hash(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


class _Collector:
    def __init__(self, source: str, lines: Mapping[Path_, int]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []

    def line(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def add(self, path: Path_, element: str, message: str) -> None:
        self.problems.append(Problem(message, element, self.source, self.line(path)))


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
                    dupes.append(Problem(f"duplicate {kind} {key!r} (first defined on line {lines[path + (key,)]})",
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

def _label(c: _Collector, raw: Any, path: Path_, element: str, fallback: str) -> Label:
    if raw is None:
        return Label(fallback, fallback)
    if isinstance(raw, str):
        return Label(raw, raw)
    if isinstance(raw, dict) and set(raw) <= {"zh", "en"}:
        zh, en = raw.get("zh"), raw.get("en")
        return Label(str(zh or en or fallback), str(en or zh or fallback))
    c.add(path, element, "label must be text or a mapping with 'zh' and 'en'")
    return Label(fallback, fallback)


def _str_list(c: _Collector, raw: Any, path: Path_, element: str, what: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return tuple(raw)
    c.add(path, element, f"{what} must be a name or a list of names")
    return ()


def _item(raw: dict, key: str, i: int, path: Path_) -> Path_:
    """The path of the i-th name under ``key``: the item itself in a list, else the key."""
    return path + (key, i) if isinstance(raw.get(key), list) else path + (key,)


def _unknown_keys(c: _Collector, raw: dict, allowed: set[str], path: Path_, element: str) -> None:
    for key in raw:
        if key not in allowed:
            c.add(path + (key,), element, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")


def _duration(c: _Collector, raw: Any, path: Path_, element: str) -> Duration | None:
    try:
        return Duration.parse(raw)
    except DurationError as exc:
        c.add(path, element, str(exc))
        return None


def build(data: Any, *, source: str = "<python>", lines: Mapping[Path_, int] | None = None, guards=None,
          calendars=None) -> WorkflowDefinition:
    """Validate plain data and build the frozen definition, or raise with every problem.

    ``guards`` is a GuardRegistry (default: the built-in guards); ``calendars`` the calendar
    names definitions may use, or a CalendarRegistry (default: "cn" and "24x7").
    """
    from .guards import default_guards

    guards = guards if guards is not None else default_guards()
    if calendars is None:
        calendar_names = {"cn", "24x7"}
    else:  # names, or a CalendarRegistry
        calendar_names = set(calendars.names() if hasattr(calendars, "names") else calendars)
    c = _Collector(source, lines or {})
    if not isinstance(data, dict):
        c.add((), "workflow", "a workflow definition must be a mapping")
        raise DefinitionError(c.problems, source)
    data = dict(data)
    c.problems.extend(data.pop("__duplicates__", []))
    if "__not_mapping__" in data:
        c.add((), "workflow", "a workflow definition must be a mapping")
        raise DefinitionError(c.problems, source)

    _unknown_keys(c, data, _TOP_KEYS, (), "workflow")
    name = data.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        c.add(("name",), "workflow", "name is required and must be an identifier such as 'grid_event'")
        name = str(name or "unnamed")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        c.add(("version",), "workflow", "version must be a positive whole number")
        version = 1
    label = _label(c, data.get("label"), ("label",), "workflow", name)
    default_calendar = data.get("calendar", "cn")
    if default_calendar not in calendar_names:
        c.add(("calendar",), "workflow", f"unknown calendar {default_calendar!r} (known: {', '.join(sorted(calendar_names))})")

    roles = _str_list(c, data.get("roles"), ("roles",), "workflow", "roles")
    for i, role in enumerate(roles):
        if role not in KNOWN_ROLES:
            c.add(("roles", i), f"role {role}", f"unknown role {role!r} (known: {', '.join(sorted(KNOWN_ROLES))})")
    role_set = set(roles) | {SYSTEM_ROLE}

    stages_raw = data.get("stages") or {}
    stages: dict[str, Label] = {}
    if not isinstance(stages_raw, dict):
        c.add(("stages",), "workflow", "stages must be a mapping of stage name to label")
    else:
        for sname, slabel in stages_raw.items():
            stages[str(sname)] = _label(c, slabel, ("stages", sname), f"stage {sname}", str(sname))

    esc_raw = data.get("escalation") or {}
    ladder = EscalationLadder(("community", "street", "district", "city"))
    if not isinstance(esc_raw, dict):
        c.add(("escalation",), "escalation", "escalation must be a mapping with a 'ladder'")
    elif esc_raw:
        _unknown_keys(c, esc_raw, {"ladder", "labels"}, ("escalation",), "escalation")
        levels = _str_list(c, esc_raw.get("ladder"), ("escalation", "ladder"), "escalation", "ladder")
        if not levels:
            c.add(("escalation", "ladder"), "escalation", "the escalation ladder needs at least one level")
        elif len(set(levels)) != len(levels):
            c.add(("escalation", "ladder"), "escalation", "escalation levels must be distinct")
        else:
            labels_raw = esc_raw.get("labels") or {}
            labels = {}
            for lvl, lab in (labels_raw.items() if isinstance(labels_raw, dict) else []):
                if lvl not in levels:
                    c.add(("escalation", "labels", lvl), "escalation", f"label for unknown level {lvl!r}")
                labels[lvl] = _label(c, lab, ("escalation", "labels", lvl), f"level {lvl}", lvl)
            ladder = EscalationLadder(levels, MappingProxyType(labels))

    # States
    states_raw = data.get("states")
    states: dict[str, StateDef] = {}
    if not isinstance(states_raw, dict) or not states_raw:
        c.add(("states",), "workflow", "states must be a non-empty mapping")
        states_raw = {}
    # Actions are parsed before timers so breach actions can be checked against them.
    actions_raw = data.get("actions")
    if not isinstance(actions_raw, dict):
        c.add(("actions",), "workflow", "actions must be a mapping of action name to its definition")
        actions_raw = {}
    state_names = set(map(str, states_raw))

    actions: dict[str, ActionDef] = {}
    for aname, araw in actions_raw.items():
        path = ("actions", aname)
        el = f"action {aname}"
        if not isinstance(aname, str) or not aname.isidentifier():
            c.add(path, el, "action names must be identifiers such as 'dispatch'")
            continue
        if not isinstance(araw, dict):
            c.add(path, el, "an action must be a mapping")
            continue
        _unknown_keys(c, araw, _ACTION_KEYS, path, el)
        sources = _str_list(c, araw.get("from"), path + ("from",), el, "'from'")
        if not sources:
            c.add(path + ("from",), el, "an action needs at least one 'from' state")
        for i, s in enumerate(sources):
            if s not in state_names:
                c.add(_item(araw, "from", i, path), el, f"unknown state {s!r} in 'from'")
        dest = araw.get("to")
        if dest is not None and dest not in state_names:
            c.add(path + ("to",), el, f"unknown state {dest!r} in 'to'")
        aroles = _str_list(c, araw.get("roles"), path + ("roles",), el, "roles")
        if not aroles:
            c.add(path + ("roles",), el, "an action needs at least one role")
        for i, r in enumerate(aroles):
            if r not in role_set:
                c.add(_item(araw, "roles", i, path), el, f"unknown role {r!r} (declare it in the workflow's roles)")
        aguards = _str_list(c, araw.get("guards"), path + ("guards",), el, "guards")
        for i, g in enumerate(aguards):
            if g not in guards:
                c.add(_item(araw, "guards", i, path), el,
                      f"guard {g!r} is not registered (registered: {', '.join(guards.names())})")
        fields: list[FieldSpec] = []
        fraw = araw.get("fields") or {}
        if not isinstance(fraw, dict):
            c.add(path + ("fields",), el, "fields must be a mapping of field name to its spec")
            fraw = {}
        for fname, fspec in fraw.items():
            fpath = path + ("fields", fname)
            if isinstance(fspec, str):
                fspec = {"type": fspec}
            if not isinstance(fspec, dict):
                c.add(fpath, el, f"field {fname!r} must be a type name or a mapping")
                continue
            _unknown_keys(c, fspec, _FIELD_KEYS, fpath, el)
            ftype = fspec.get("type", "string")
            if ftype not in FIELD_TYPES:
                c.add(fpath + ("type",), el, f"field {fname!r} has unknown type {ftype!r} (known: {', '.join(sorted(FIELD_TYPES))})")
            choices = _str_list(c, fspec.get("choices"), fpath + ("choices",), el, "choices")
            if ftype == "choice" and not choices:
                c.add(fpath, el, f"field {fname!r} of type choice needs 'choices'")
            max_length = fspec.get("max_length")
            if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                           or max_length < 1):
                c.add(fpath + ("max_length",), el, f"field {fname!r}: max_length must be a positive whole number")
                max_length = None
            fields.append(FieldSpec(str(fname), ftype, bool(fspec.get("required", False)), choices,
                                    _label(c, fspec.get("label"), fpath + ("label",), el, str(fname)) if fspec.get("label") else None,
                                    max_length))
        field_names = {f.name for f in fields}
        assign = araw.get("assign")
        if assign is not None and assign != ASSIGN_ORIGIN and assign not in field_names:
            c.add(path + ("assign",), el, f"assign names {assign!r}, which is neither 'origin' nor a field of this action")
        sets = araw.get("set") or {}
        if not isinstance(sets, dict):
            c.add(path + ("set",), el, "set must be a mapping of case data key to value or $field")
            sets = {}
        for key, value in sets.items():
            if isinstance(value, str) and value.startswith("$") and value[1:] not in field_names:
                c.add(path + ("set", key), el, f"set {key!r} refers to {value!r}, which is not a field of this action")
        extend = None
        eraw = araw.get("extend")
        if eraw is not None:
            if not isinstance(eraw, dict) or set(eraw) != {"timer", "by"}:
                c.add(path + ("extend",), el, "extend needs 'timer' (a timer name) and 'by' ($field or a duration)")
            else:
                by = eraw["by"]
                if isinstance(by, str) and by.startswith("$data."):
                    pass  # a value recorded in the case data by an earlier action (e.g. the requested extension)
                elif isinstance(by, str) and by.startswith("$"):
                    spec = next((f for f in fields if f.name == by[1:]), None)
                    if spec is None:
                        c.add(path + ("extend", "by"), el, f"extend by {by!r}: no such field in this action")
                    elif spec.type != "duration":
                        c.add(path + ("extend", "by"), el, f"extend by {by!r}: the field must have type duration")
                else:
                    _duration(c, by, path + ("extend", "by"), el)
                extend = (str(eraw["timer"]), str(by))
        routes: list[Route] = []
        rraw = araw.get("routes") or []
        if not isinstance(rraw, list):
            c.add(path + ("routes",), el, "routes must be a list of {when: {field: value}, to: state}")
            rraw = []
        for i, r in enumerate(rraw):
            rpath = path + ("routes", i)
            when = r.get("when") if isinstance(r, dict) else None
            if not isinstance(when, dict) or len(when) != 1 or set(r) != {"when", "to"}:
                c.add(rpath, el, "a route is {when: {field: value or [values]}, to: state}")
                continue
            (rfield, rvals), = when.items()
            if rfield not in field_names:
                c.add(rpath + ("when",), el, f"route tests {rfield!r}, which is not a field of this action")
            if r["to"] not in state_names:
                c.add(rpath + ("to",), el, f"unknown state {r['to']!r} in route")
            rvals = tuple(rvals) if isinstance(rvals, list) else (rvals,)
            rspec = next((f for f in fields if f.name == rfield), None)
            if rspec is not None and rspec.choices:
                for v in rvals:
                    if v not in rspec.choices:
                        c.add(rpath + ("when",), el,
                              f"route tests {rfield!r} for {v!r}, which is not one of its choices "
                              f"({', '.join(rspec.choices)}): the route could never be taken")
            routes.append(Route(str(rfield), rvals, str(r["to"])))
        actions[aname] = ActionDef(
            name=aname, label=_label(c, araw.get("label"), path + ("label",), el, aname),
            sources=sources, dest=dest, roles=aroles, guards=aguards, fields=tuple(fields), assign=assign,
            sets=MappingProxyType(dict(sets)), clears=_str_list(c, araw.get("clear"), path + ("clear",), el, "clear"),
            extend=extend, escalate=bool(araw.get("escalate", False)), supervise=bool(araw.get("supervise", False)),
            routes=tuple(routes),
        )

    for sname, sraw in states_raw.items():
        path = ("states", sname)
        el = f"state {sname}"
        if not isinstance(sname, str) or not sname.isidentifier():
            c.add(path, el, "state names must be identifiers such as 'dispatched'")
            continue
        sraw = sraw or {}
        if not isinstance(sraw, dict):
            c.add(path, el, "a state must be a mapping")
            continue
        _unknown_keys(c, sraw, _STATE_KEYS, path, el)
        stage = sraw.get("stage", "")
        if stages and stage not in stages:
            c.add(path + ("stage",), el, f"unknown stage {stage!r} (declared: {', '.join(stages)})")
        final = bool(sraw.get("final", False))
        holder = _str_list(c, sraw.get("holder"), path + ("holder",), el, "holder")
        for r in holder:
            if r not in role_set:
                c.add(path + ("holder",), el, f"unknown role {r!r} as holder")
        outcome = sraw.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            c.add(path + ("outcome",), el, f"unknown outcome {outcome!r} (known: {', '.join(sorted(OUTCOMES))})")
        if final and outcome is None:
            outcome = "resolved"
        timers: list[TimerDef] = []
        traw = sraw.get("timers") or []
        if traw and final:
            c.add(path + ("timers",), el, "a final state cannot have timers: nothing is left to wait for")
        if not isinstance(traw, list):
            c.add(path + ("timers",), el, "timers must be a list")
            traw = []
        seen_timers: set[str] = set()
        for i, t in enumerate(traw):
            tpath = path + ("timers", i)
            if not isinstance(t, dict):
                c.add(tpath, el, "a timer must be a mapping")
                continue
            tname = t.get("name")
            tel = f"{el} / timer {tname}"
            _unknown_keys(c, t, _TIMER_KEYS, tpath, tel)
            if not isinstance(tname, str) or not tname.isidentifier():
                c.add(tpath, tel, "a timer needs a 'name' such as 'acknowledge'")
                continue
            if tname in seen_timers:
                c.add(tpath, tel, f"duplicate timer {tname!r} in state {sname!r}")
            seen_timers.add(tname)
            dur = _duration(c, t.get("duration"), tpath + ("duration",), tel)
            cal = t.get("calendar", default_calendar)
            if cal not in calendar_names:
                c.add(tpath + ("calendar",), tel, f"unknown calendar {cal!r} (known: {', '.join(sorted(calendar_names))})")
            warn = t.get("warn_at") or []
            if not isinstance(warn, list):
                warn = [warn]
            for w in warn:
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w < 1:
                    c.add(tpath + ("warn_at",), tel, f"warn_at {w!r} must be a fraction between 0 and 1, e.g. 0.75")
            braw = t.get("on_breach") or {}
            if not isinstance(braw, dict):
                c.add(tpath + ("on_breach",), tel, "on_breach must be a mapping")
                braw = {}
            _unknown_keys(c, braw, _BREACH_KEYS, tpath + ("on_breach",), tel)
            baction = braw.get("action")
            if baction is not None:
                act = actions.get(baction)
                if act is None:
                    c.add(tpath + ("on_breach", "action"), tel, f"breach action {baction!r} is not an action of this workflow")
                elif sname not in act.sources:
                    c.add(tpath + ("on_breach", "action"), tel, f"breach action {baction!r} cannot be taken from state {sname!r}")
                elif any(f.required for f in act.fields):
                    c.add(tpath + ("on_breach", "action"), tel,
                          f"breach action {baction!r} has required fields; the system cannot fill them in")
            notify = _str_list(c, braw.get("notify"), tpath + ("on_breach", "notify"), tel, "notify")
            for r in notify:
                if r not in role_set:
                    c.add(tpath + ("on_breach", "notify"), tel, f"unknown role {r!r} to notify")
            repeat = _duration(c, t["repeat"], tpath + ("repeat",), tel) if t.get("repeat") is not None else None
            if dur is None:
                continue
            timers.append(TimerDef(
                name=tname, label=_label(c, t.get("label"), tpath + ("label",), tel, tname), duration=dur,
                calendar=cal if dur.is_working_time else "24x7",
                warn_at=tuple(sorted(float(w) for w in warn if isinstance(w, (int, float)) and 0 < w < 1)),
                on_breach=BreachPolicy(bool(braw.get("escalate", False)), bool(braw.get("supervise", False)),
                                       baction, notify),
                repeat=repeat, purpose=str(t.get("purpose", tname)),
            ))
        states[sname] = StateDef(
            name=sname, label=_label(c, sraw.get("label"), path + ("label",), el, sname), stage=str(stage),
            final=final, pauses_sla=bool(sraw.get("pauses_sla", False)), holder_roles=holder,
            timers=tuple(timers), outcome=outcome if final else None,
        )

    initial = data.get("initial")
    if initial not in states:
        c.add(("initial",), "workflow", f"initial state {initial!r} is not one of the states")
    elif states[initial].final:
        c.add(("initial",), "workflow", f"initial state {initial!r} is final: a case would close as it opens")
    if states and not any(s.final for s in states.values()):
        c.add(("states",), "workflow", "no state is final: a case could never close")

    for aname, act in actions.items():
        for s in act.sources:
            if s in states and states[s].final:
                c.add(("actions", aname, "from"), f"action {aname}",
                      f"state {s!r} is final: no action may leave it")
        if act.extend and act.extend[0] not in {t.name for s in states.values() for t in s.timers}:
            c.add(("actions", aname, "extend"), f"action {aname}", f"extend names unknown timer {act.extend[0]!r}")

    # Reachability and ways out, over actions and breach-driven actions alike.
    if initial in states:
        edges: dict[str, set[str]] = {s: set() for s in states}
        for act in actions.values():
            for s in act.sources:
                if s in edges:
                    edges[s].update(act.destinations or (s,))
        seen = {initial}
        queue = deque([initial])
        while queue:
            for nxt in edges.get(queue.popleft(), ()):
                if nxt in states and nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        for sname in states:
            if sname not in seen:
                c.add(("states", sname), f"state {sname}", f"state {sname!r} is unreachable from {initial!r}")
        for sname, st in states.items():
            if not st.final and not any(d != sname for d in edges[sname]):
                c.add(("states", sname), f"state {sname}", f"non-final state {sname!r} has no way out")

    if c.problems:
        raise DefinitionError(sorted(c.problems, key=lambda p: p.line or 0), source)
    raw = {k: v for k, v in data.items()}
    return WorkflowDefinition(
        name=name, version=version, label=label, initial=initial, states=MappingProxyType(states),
        actions=MappingProxyType(actions), stages=MappingProxyType(stages), escalation=ladder, roles=roles,
        calendar=default_calendar, description=str(data.get("description", "")), source=source,
        raw=MappingProxyType(raw),
    )


def definition_hash(defn: WorkflowDefinition) -> str:
    return content_hash(dict(defn.raw))
