"""Loader: the ``actions:`` section — who may take each action, from where to where, with what payload."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from .definition import (
    ACTION_KINDS, ASSIGN_ACTOR, ASSIGN_DISPATCHER, ASSIGN_ORIGIN, FIELD_TYPES, RETURN_VERDICTS,
    ROUTE_OPERATORS, ActionDef, FieldSpec, Route,
)
from .load_common import Path_, Scope, duration, item, known, label, names, unknown_keys

_ACTION_KEYS = {"label", "from", "to", "routes", "roles", "guards", "fields", "assign", "set", "clear",
                "extend", "escalate", "supervise", "kind", "count", "return_verdict", "deescalate"}
_FIELD_KEYS = {"type", "required", "choices", "label", "max_length"}


def parse_actions(s: Scope, actions_raw: dict) -> dict[str, ActionDef]:
    actions: dict[str, ActionDef] = {}
    for aname, araw in actions_raw.items():
        act = _action(s, aname, araw)
        if act is not None:
            actions[aname] = act
    return actions


def _action(s: Scope, aname: Any, araw: Any) -> ActionDef | None:
    c, path, el = s.c, ("actions", aname), f"action {aname}"
    if not isinstance(aname, str) or not aname.isidentifier():
        c.add(path, el, "action names must be identifiers such as 'dispatch'")
        return None
    if not isinstance(araw, dict):
        c.add(path, el, "an action must be a mapping")
        return None
    unknown_keys(c, araw, _ACTION_KEYS, path, el)
    sources, dest = _sources_and_dest(s, araw, path, el)
    aroles = _roles(s, araw, path, el)
    aguards = _guards(s, araw, path, el)
    fields = _fields(s, araw, path, el)
    field_names = {f.name for f in fields}
    assign = araw.get("assign")
    if assign is not None and assign not in (ASSIGN_ORIGIN, ASSIGN_DISPATCHER, ASSIGN_ACTOR) \
            and assign not in field_names \
            and not (isinstance(assign, str) and assign.startswith("$data.") and len(assign) > 6):
        c.add(path + ("assign",), el, f"assign names {assign!r}, which is neither 'origin', 'dispatcher', "
                                      "'actor', '$data.<key>' nor a field of this action")
    sets = _sets(s, araw, path, el, field_names)
    extend = _extend(s, araw, path, el, fields)
    routes = _routes(s, araw, path, el, fields)
    return ActionDef(
        name=aname, label=label(c, araw.get("label"), path + ("label",), el, aname),
        sources=sources, dest=dest, roles=aroles, guards=aguards, fields=fields, assign=assign,
        sets=MappingProxyType(dict(sets)), clears=names(c, araw.get("clear"), path + ("clear",), el, "clear"),
        extend=extend, escalate=bool(araw.get("escalate", False)),
        deescalate=bool(araw.get("deescalate", False)),
        supervise=bool(araw.get("supervise", False)), routes=routes, kind=_kind(s, araw, path, el),
        count=_counters(s, araw, path, el), return_verdict=_verdict(s, araw, path, el),
    )


def _kind(s: Scope, araw: dict, path: Path_, el: str) -> str:
    """What the action is for statistics (``dispatch``, ``return``...); ``other`` when not said."""
    kind = araw.get("kind", "other")
    if kind not in ACTION_KINDS:
        s.c.add(path + ("kind",), el, f"unknown kind {kind!r} (known: {known(ACTION_KINDS)})")
        return "other"
    return kind


def _counters(s: Scope, araw: dict, path: Path_, el: str) -> tuple[str, ...]:
    keys = names(s.c, araw.get("count"), path + ("count",), el, "count")
    for i, key in enumerate(keys):
        if not key.isidentifier():
            s.c.add(item(araw, "count", i, path), el,
                    f"count names {key!r}: a case data key such as 'returns'")
    return keys


def _verdict(s: Scope, araw: dict, path: Path_, el: str) -> str | None:
    verdict = araw.get("return_verdict")
    if verdict is not None and verdict not in RETURN_VERDICTS:
        s.c.add(path + ("return_verdict",), el,
                f"return_verdict must be one of {known(RETURN_VERDICTS)}, got {verdict!r}")
        return None
    return verdict


def _sources_and_dest(s: Scope, araw: dict, path: Path_, el: str) -> tuple[tuple[str, ...], Any]:
    c = s.c
    sources = names(c, araw.get("from"), path + ("from",), el, "'from'")
    if not sources:
        c.add(path + ("from",), el, "an action needs at least one 'from' state")
    for i, src in enumerate(sources):
        if src not in s.state_names:
            c.add(item(araw, "from", i, path), el, f"unknown state {src!r} in 'from'")
    dest = araw.get("to")
    if dest is not None and dest not in s.state_names:
        c.add(path + ("to",), el, f"unknown state {dest!r} in 'to'")
    return sources, dest


def _roles(s: Scope, araw: dict, path: Path_, el: str) -> tuple[str, ...]:
    aroles = names(s.c, araw.get("roles"), path + ("roles",), el, "roles")
    if not aroles:
        s.c.add(path + ("roles",), el, "an action needs at least one role")
    for i, r in enumerate(aroles):
        if r not in s.roles:
            s.c.add(item(araw, "roles", i, path), el,
                    f"unknown role {r!r} (declare it in the workflow's roles)")
    return aroles


def _guards(s: Scope, araw: dict, path: Path_, el: str) -> tuple[str, ...]:
    aguards = names(s.c, araw.get("guards"), path + ("guards",), el, "guards")
    for i, g in enumerate(aguards):
        if g not in s.guards:
            s.c.add(item(araw, "guards", i, path), el,
                    f"guard {g!r} is not registered (registered: {', '.join(s.guards.names())})")
    return aguards


# --- payload fields ---------------------------------------------------------------------------

def _fields(s: Scope, araw: dict, path: Path_, el: str) -> tuple[FieldSpec, ...]:
    fraw = araw.get("fields") or {}
    if not isinstance(fraw, dict):
        s.c.add(path + ("fields",), el, "fields must be a mapping of field name to its spec")
        fraw = {}
    fields = (_field(s, fname, fspec, path + ("fields", fname), el) for fname, fspec in fraw.items())
    return tuple(f for f in fields if f is not None)


def _field(s: Scope, fname: Any, fspec: Any, fpath: Path_, el: str) -> FieldSpec | None:
    c = s.c
    if isinstance(fspec, str):
        fspec = {"type": fspec}
    if not isinstance(fspec, dict):
        c.add(fpath, el, f"field {fname!r} must be a type name or a mapping")
        return None
    unknown_keys(c, fspec, _FIELD_KEYS, fpath, el)
    ftype = fspec.get("type", "string")
    if ftype not in FIELD_TYPES:
        c.add(fpath + ("type",), el,
              f"field {fname!r} has unknown type {ftype!r} (known: {known(FIELD_TYPES)})")
    choices = names(c, fspec.get("choices"), fpath + ("choices",), el, "choices")
    if ftype == "choice" and not choices:
        c.add(fpath, el, f"field {fname!r} of type choice needs 'choices'")
    max_length = fspec.get("max_length")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 1):
        c.add(fpath + ("max_length",), el, f"field {fname!r}: max_length must be a positive whole number")
        max_length = None
    flabel = label(c, fspec.get("label"), fpath + ("label",), el, str(fname)) if fspec.get("label") else None
    return FieldSpec(str(fname), ftype, bool(fspec.get("required", False)), choices, flabel, max_length)


def _field_named(fields: tuple[FieldSpec, ...], name: Any) -> FieldSpec | None:
    return next((f for f in fields if f.name == name), None)


# --- what an action does besides moving the case ---------------------------------------------

def _sets(s: Scope, araw: dict, path: Path_, el: str, field_names: set[str]) -> dict:
    sets = araw.get("set") or {}
    if not isinstance(sets, dict):
        s.c.add(path + ("set",), el, "set must be a mapping of case data key to value or $field")
        return {}
    for key, value in sets.items():
        if isinstance(value, str) and value.startswith("$data.") and len(value) > 6:
            continue  # copies a value the case data holds (e.g. the reason of the pending request)
        if isinstance(value, str) and value.startswith("$") and value[1:] not in field_names:
            s.c.add(path + ("set", key), el,
                    f"set {key!r} refers to {value!r}, which is not a field of this action")
    return sets


def _extend(s: Scope, araw: dict, path: Path_, el: str,
            fields: tuple[FieldSpec, ...]) -> tuple[str, str] | None:
    c, eraw = s.c, araw.get("extend")
    if eraw is None:
        return None
    if not isinstance(eraw, dict) or set(eraw) != {"timer", "by"}:
        c.add(path + ("extend",), el, "extend needs 'timer' (a timer name) and 'by' ($field or a duration)")
        return None
    by = eraw["by"]
    if isinstance(by, str) and by.startswith("$data."):
        pass  # a value recorded in the case data by an earlier action (e.g. the requested extension)
    elif isinstance(by, str) and by.startswith("$"):
        spec = _field_named(fields, by[1:])
        if spec is None:
            c.add(path + ("extend", "by"), el, f"extend by {by!r}: no such field in this action")
        elif spec.type != "duration":
            c.add(path + ("extend", "by"), el, f"extend by {by!r}: the field must have type duration")
    else:
        duration(c, by, path + ("extend", "by"), el)
    return (str(eraw["timer"]), str(by))


def _routes(s: Scope, araw: dict, path: Path_, el: str, fields: tuple[FieldSpec, ...]) -> tuple[Route, ...]:
    rraw = araw.get("routes") or []
    if not isinstance(rraw, list):
        s.c.add(path + ("routes",), el, "routes must be a list of {when: {field: value}, to: state}")
        rraw = []
    routes = (_route(s, r, path + ("routes", i), el, fields) for i, r in enumerate(rraw))
    return tuple(r for r in routes if r is not None)


def _route(s: Scope, r: Any, rpath: Path_, el: str, fields: tuple[FieldSpec, ...]) -> Route | None:
    c = s.c
    when = r.get("when") if isinstance(r, dict) else None
    if not isinstance(when, dict) or len(when) != 1 or set(r) not in ({"when", "to"}, {"when", "stay"}) \
            or r.get("stay", True) is not True:
        c.add(rpath, el, "a route is {when: {field: value or [values]}, to: state} (or stay: true)")
        return None
    stay = "stay" in r
    (rfield, rvals), = when.items()
    is_data = isinstance(rfield, str) and rfield.startswith("data.") and len(rfield) > 5
    if not is_data and rfield not in {f.name for f in fields}:
        c.add(rpath + ("when",), el,
              f"route tests {rfield!r}, which is neither a field of this action nor 'data.<key>'")
    if not stay and r["to"] not in s.state_names:
        c.add(rpath + ("to",), el, f"unknown state {r['to']!r} in route")
    op, rvals = _route_test(s, rvals, rpath, el)
    values_from = _values_from(op, rvals)
    rspec = _field_named(fields, rfield)
    if rspec is not None and rspec.choices and op in ("in", "eq", "ne") and values_from is None:
        for v in rvals:
            if v not in rspec.choices:
                c.add(rpath + ("when",), el,
                      f"route tests {rfield!r} for {v!r}, which is not one of its choices "
                      f"({', '.join(rspec.choices)}): the route could never be taken")
    return Route(str(rfield), () if values_from else rvals, "" if stay else str(r["to"]), op, stay,
                 values_from)


def _values_from(op: str, rvals: tuple[Any, ...]) -> str | None:
    """``{in: $data.key}`` / ``{ne: $data.key}``: the values are a list in the case data."""
    ref = rvals[0] if op in ("in", "ne") and len(rvals) == 1 else None
    if isinstance(ref, str) and ref.startswith("$data.") and len(ref) > 6:
        return ref[6:]
    return None


def _route_test(s: Scope, rvals: Any, rpath: Path_, el: str) -> tuple[str, tuple[Any, ...]]:
    """A value, a list of values, or one comparison such as ``{gte: 1}``."""
    if not isinstance(rvals, dict):
        return "in", tuple(rvals) if isinstance(rvals, list) else (rvals,)
    if len(rvals) != 1 or next(iter(rvals)) not in ROUTE_OPERATORS:
        s.c.add(rpath + ("when",), el,
                f"a route comparison is one of {known(ROUTE_OPERATORS)} with a value, e.g. {{gte: 1}}")
        return "in", ()
    (op, value), = rvals.items()
    if op == "in":
        return "in", tuple(value) if isinstance(value, list) else (value,)
    if op in ("gte", "gt", "lte", "lt") and (isinstance(value, bool) or not isinstance(value, (int, float))):
        s.c.add(rpath + ("when",), el, f"{op} compares with a number, got {value!r}")
        return "in", ()
    return op, (value,)
