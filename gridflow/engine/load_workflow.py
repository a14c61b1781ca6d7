"""Loader: the workflow as a whole — its header, roles, stages, escalation ladder and notifications,
and the checks that need every state and action at once (initial, final, reachable, a way out)."""

from __future__ import annotations

from collections import deque
from string import Formatter
from types import MappingProxyType
from typing import Any, Mapping

from .definition import (
    DEFAULT_NOTIFICATIONS, NOTIFICATION_PLACEHOLDERS, NOTIFICATION_TOKENS, ActionDef, EscalationLadder,
    ExtensionLimits, IntakeDef, Label, Limits, NotificationDef, StateDef,
)
from .load_common import Collector, Scope, duration, item, known, label, names, unknown_keys
from .roles import KNOWN_ROLES, SYSTEM_ROLE

DEFAULT_LADDER = ("community", "street", "district", "city")
_NOTIFICATION_KEYS = {"message", "to"}


def parse_header(c: Collector, data: dict, calendar_names: frozenset[str]) -> tuple[str, int, Label, Any]:
    """Name, version, label and default calendar."""
    name = data.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        c.add(("name",), "workflow", "name is required and must be an identifier such as 'grid_event'")
        name = str(name or "unnamed")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        c.add(("version",), "workflow", "version must be a positive whole number")
        version = 1
    wlabel = label(c, data.get("label"), ("label",), "workflow", name)
    default_calendar = data.get("calendar", "cn")
    if default_calendar not in calendar_names:
        c.add(("calendar",), "workflow",
              f"unknown calendar {default_calendar!r} (known: {known(calendar_names)})")
    return name, version, wlabel, default_calendar


def parse_roles(c: Collector, data: dict) -> tuple[str, ...]:
    roles = names(c, data.get("roles"), ("roles",), "workflow", "roles")
    for i, role in enumerate(roles):
        if role not in KNOWN_ROLES:
            c.add(("roles", i), f"role {role}", f"unknown role {role!r} (known: {known(KNOWN_ROLES)})")
    return roles


def role_set(roles: tuple[str, ...]) -> frozenset[str]:
    """The roles a definition's elements may name: its declared roles and the system."""
    return frozenset(roles) | {SYSTEM_ROLE}


def parse_stages(c: Collector, data: dict) -> dict[str, Label]:
    stages_raw = data.get("stages") or {}
    stages: dict[str, Label] = {}
    if not isinstance(stages_raw, dict):
        c.add(("stages",), "workflow", "stages must be a mapping of stage name to label")
        return stages
    for sname, slabel in stages_raw.items():
        stages[str(sname)] = label(c, slabel, ("stages", sname), f"stage {sname}", str(sname))
    return stages


def parse_escalation(c: Collector, data: dict) -> EscalationLadder:
    esc_raw = data.get("escalation") or {}
    ladder = EscalationLadder(DEFAULT_LADDER)
    if not isinstance(esc_raw, dict):
        c.add(("escalation",), "escalation", "escalation must be a mapping with a 'ladder'")
        return ladder
    if not esc_raw:
        return ladder
    unknown_keys(c, esc_raw, {"ladder", "labels"}, ("escalation",), "escalation")
    levels = names(c, esc_raw.get("ladder"), ("escalation", "ladder"), "escalation", "ladder")
    if not levels:
        c.add(("escalation", "ladder"), "escalation", "the escalation ladder needs at least one level")
        return ladder
    if len(set(levels)) != len(levels):
        c.add(("escalation", "ladder"), "escalation", "escalation levels must be distinct")
        return ladder
    labels_raw = esc_raw.get("labels") or {}
    labels = {}
    for lvl, lab in (labels_raw.items() if isinstance(labels_raw, dict) else []):
        if lvl not in levels:
            c.add(("escalation", "labels", lvl), "escalation", f"label for unknown level {lvl!r}")
        labels[lvl] = label(c, lab, ("escalation", "labels", lvl), f"level {lvl}", lvl)
    return EscalationLadder(levels, MappingProxyType(labels))


def parse_intake(c: Collector, data: dict) -> IntakeDef:
    """``intake: {public: true}`` lets anonymous callers open cases of this workflow (default: not)."""
    raw = data.get("intake")
    if raw is None:
        return IntakeDef()
    if not isinstance(raw, dict):
        c.add(("intake",), "intake", "intake must be a mapping, e.g. {public: true}")
        return IntakeDef()
    unknown_keys(c, raw, {"public"}, ("intake",), "intake")
    public = raw.get("public", False)
    if not isinstance(public, bool):
        c.add(("intake", "public"), "intake", "public must be true or false")
        return IntakeDef()
    return IntakeDef(public=public)


def parse_limits(c: Collector, data: dict) -> Limits:
    """``limits: {extensions: {max_count: 2, max_total: 15wd}}``: caps the guard
    ``extension_within_limits`` enforces."""
    raw = data.get("limits")
    if raw is None:
        return Limits()
    if not isinstance(raw, dict):
        c.add(("limits",), "limits", "limits must be a mapping, e.g. {extensions: {max_count: 2}}")
        return Limits()
    unknown_keys(c, raw, {"extensions"}, ("limits",), "limits")
    eraw = raw.get("extensions") or {}
    path, el = ("limits", "extensions"), "limits / extensions"
    if not isinstance(eraw, dict):
        c.add(path, el, "extensions must be a mapping with max_count and/or max_total")
        return Limits()
    unknown_keys(c, eraw, {"max_count", "max_total"}, path, el)
    count = eraw.get("max_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        c.add(path + ("max_count",), el, f"max_count must be a whole number (0 or more), got {count!r}")
        count = None
    total = duration(c, eraw["max_total"], path + ("max_total",), el) if eraw.get("max_total") is not None \
        else None
    return Limits(ExtensionLimits(count, total))


# --- notifications ----------------------------------------------------------------------------

def parse_notifications(s: Scope, data: dict) -> Mapping[str, NotificationDef]:
    """The language's defaults, overridden kind by kind (and part by part) by ``notifications:``."""
    raw = data.get("notifications")
    if raw is None:
        return DEFAULT_NOTIFICATIONS
    if not isinstance(raw, dict):
        s.c.add(("notifications",), "notifications",
                "notifications must be a mapping of kind to {message, to}")
        return DEFAULT_NOTIFICATIONS
    unknown_keys(s.c, raw, set(NOTIFICATION_PLACEHOLDERS), ("notifications",), "notifications")
    out = dict(DEFAULT_NOTIFICATIONS)
    for kind, nraw in raw.items():
        if kind in NOTIFICATION_PLACEHOLDERS:
            out[kind] = _notification(s, kind, nraw)
    return MappingProxyType(out)


def _notification(s: Scope, kind: str, nraw: Any) -> NotificationDef:
    c, path, el = s.c, ("notifications", kind), f"notification {kind}"
    default = DEFAULT_NOTIFICATIONS[kind]
    if not isinstance(nraw, dict):
        c.add(path, el, "a notification is a mapping with 'message' and/or 'to'")
        return default
    unknown_keys(c, nraw, _NOTIFICATION_KEYS, path, el)
    message = nraw.get("message", default.message)
    if not isinstance(message, str):
        c.add(path + ("message",), el, "message must be text")
        message = default.message
    elif not _template_ok(c, kind, message, path + ("message",), el):
        message = default.message
    to = default.to
    if "to" in nraw:
        to = names(c, nraw["to"], path + ("to",), el, "to")
        tokens = NOTIFICATION_TOKENS[kind]
        for i, r in enumerate(to):
            if r.startswith("$") and r not in tokens:
                c.add(item(nraw, "to", i, path), el,
                      f"unknown recipient {r!r} (known here: {known(tokens) or 'none'})")
            elif not r.startswith("$") and r not in s.roles:
                c.add(item(nraw, "to", i, path), el, f"unknown role {r!r} to notify")
    return NotificationDef(message, to)


def _template_ok(c: Collector, kind: str, message: str, path: tuple, el: str) -> bool:
    allowed = NOTIFICATION_PLACEHOLDERS[kind]
    try:
        fields = [f for _, f, _, _ in Formatter().parse(message) if f is not None]
    except ValueError as exc:
        c.add(path, el, f"message is not a valid template: {exc} (write {{{{ and }}}} for a literal brace)")
        return False
    bad = [f for f in fields if f not in allowed]
    for f in bad:
        c.add(path, el, f"unknown placeholder {{{f}}} in the message (known: {known(allowed)})")
    return not bad


# --- the workflow as a graph ------------------------------------------------------------------

def check_graph(c: Collector, initial: Any, states: Mapping[str, StateDef],
                actions: Mapping[str, ActionDef]) -> None:
    _check_initial_and_final(c, initial, states)
    _check_actions_against_states(c, states, actions)
    if initial in states:
        _check_reachability(c, initial, states, actions)


def _check_initial_and_final(c: Collector, initial: Any, states: Mapping[str, StateDef]) -> None:
    if initial not in states:
        c.add(("initial",), "workflow", f"initial state {initial!r} is not one of the states")
    elif states[initial].final:
        c.add(("initial",), "workflow", f"initial state {initial!r} is final: a case would close as it opens")
    if states and not any(s.final for s in states.values()):
        c.add(("states",), "workflow", "no state is final: a case could never close")


def _check_actions_against_states(c: Collector, states: Mapping[str, StateDef],
                                  actions: Mapping[str, ActionDef]) -> None:
    timer_names = {t.name for s in states.values() for t in s.timers}
    _check_continues_in(c, states)
    for aname, act in actions.items():
        for s in act.sources:
            if s in states and states[s].final:
                c.add(("actions", aname, "from"), f"action {aname}",
                      f"state {s!r} is final: no action may leave it")
        if act.extend and act.extend[0] not in timer_names:
            c.add(("actions", aname, "extend"), f"action {aname}",
                  f"extend names unknown timer {act.extend[0]!r}")


def _check_continues_in(c: Collector, states: Mapping[str, StateDef]) -> None:
    for sname, st in states.items():
        for i, t in enumerate(st.timers):
            path, el = ("states", sname, "timers", i, "continues_in"), f"state {sname} / timer {t.name}"
            for dest in t.continues_in:
                if dest not in states:
                    continue  # reported with the timer
                if states[dest].final:
                    c.add(path, el, f"continues_in names final state {dest!r}: a closed case has no "
                                    "running deadline")
                other = next((o for o in states[dest].timers if o.name == t.name), None)
                if other is not None and other.calendar != t.calendar:
                    c.add(path, el, f"timer {t.name!r} of state {dest!r} runs on calendar "
                                    f"{other.calendar!r}, this one on {t.calendar!r}: a deadline that "
                                    "carries on keeps one calendar")


def _check_reachability(c: Collector, initial: str, states: Mapping[str, StateDef],
                        actions: Mapping[str, ActionDef]) -> None:
    """Reachability and ways out, over actions and breach-driven actions alike."""
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
