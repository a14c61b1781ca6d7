"""Loader: the case-level programs — ``supervision:`` (督办 orders, 催办, 通报批评) and ``co_handling:``
(主办/协办 parts) — and the checks that tie the actions driving them to those sections."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from .definition import (
    DEFAULT_NOTICE_AFTER, DEFAULT_REMINDER_AFTER, ActionDef, BreachPolicy, CoHandlingDef, SupervisionDef,
    SupervisionLevel,
)
from .durations import Duration
from .load_common import Path_, Scope, duration, known, label, names, unknown_keys

_SUPERVISION_KEYS = {"levels", "reminder_after", "notice_after", "on_overdue", "calendar"}
_LEVEL_KEYS = {"label", "reply_within"}
_CO_HANDLING_KEYS = {"sign_within", "answer_within", "on_breach", "calendar"}
_POLICY_KEYS = {"escalate", "notify"}
#: The payload field of a dispatch action that names the co-handling units.
CO_HANDLERS_FIELD = "co_handlers"
_PART_KINDS = ("co_sign_for", "co_answer", "co_close")


def parse_supervision(s: Scope, data: dict) -> SupervisionDef:
    raw = data.get("supervision")
    if raw is None:
        return SupervisionDef()
    c, path, el = s.c, ("supervision",), "supervision"
    if not isinstance(raw, dict):
        c.add(path, el, "supervision must be a mapping with 'levels', 'reminder_after' and 'notice_after'")
        return SupervisionDef()
    unknown_keys(c, raw, _SUPERVISION_KEYS, path, el)
    levels = _levels(s, raw.get("levels"), path + ("levels",))
    reminder = _duration_or(s, raw, "reminder_after", DEFAULT_REMINDER_AFTER, path, el)
    notice = _duration_or(s, raw, "notice_after", DEFAULT_NOTICE_AFTER, path, el)
    policy = _policy(s, raw.get("on_overdue", {"escalate": True}), path + ("on_overdue",), el)
    return SupervisionDef(MappingProxyType(levels), reminder, notice, policy, _calendar(s, raw, path, el))


def _levels(s: Scope, raw: Any, path: Path_) -> dict[str, SupervisionLevel]:
    c, el = s.c, "supervision"
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        c.add(path, el, "levels must be a mapping of level name to {label, reply_within}")
        return {}
    out = {}
    for name, lraw in raw.items():
        lpath, lel = path + (name,), f"supervision level {name}"
        if not isinstance(name, str) or not name.isidentifier():
            c.add(lpath, lel, "level names must be identifiers such as 'general'")
            continue
        if not isinstance(lraw, dict):
            c.add(lpath, lel, "a level is a mapping with 'label' and 'reply_within'")
            continue
        unknown_keys(c, lraw, _LEVEL_KEYS, lpath, lel)
        within = duration(c, lraw.get("reply_within"), lpath + ("reply_within",), lel)
        if within is not None:
            out[name] = SupervisionLevel(name, label(c, lraw.get("label"), lpath + ("label",), lel, name),
                                         within)
    return out


def parse_co_handling(s: Scope, data: dict) -> CoHandlingDef | None:
    raw = data.get("co_handling")
    if raw is None:
        return None
    c, path, el = s.c, ("co_handling",), "co_handling"
    if not isinstance(raw, dict):
        c.add(path, el, "co_handling must be a mapping with 'sign_within' and 'answer_within'")
        return None
    unknown_keys(c, raw, _CO_HANDLING_KEYS, path, el)
    sign = duration(c, raw.get("sign_within"), path + ("sign_within",), el)
    answer = duration(c, raw.get("answer_within"), path + ("answer_within",), el)
    policy = _policy(s, raw.get("on_breach", {}), path + ("on_breach",), el)
    if sign is None or answer is None:
        return None
    return CoHandlingDef(sign, answer, policy, _calendar(s, raw, path, el))


def _duration_or(s: Scope, raw: dict, key: str, default: Duration, path: Path_, el: str) -> Duration:
    if raw.get(key) is None:
        return default
    return duration(s.c, raw[key], path + (key,), el) or default


def _calendar(s: Scope, raw: dict, path: Path_, el: str) -> str | None:
    cal = raw.get("calendar")
    if cal is not None and cal not in s.calendar_names:
        s.c.add(path + ("calendar",), el, f"unknown calendar {cal!r} (known: {known(s.calendar_names)})")
        return None
    return cal


def _policy(s: Scope, raw: Any, path: Path_, el: str) -> BreachPolicy:
    if not isinstance(raw, dict):
        s.c.add(path, el, "a breach policy is a mapping such as {escalate: true, notify: [supervisor]}")
        return BreachPolicy()
    unknown_keys(s.c, raw, _POLICY_KEYS, path, el)
    notify = names(s.c, raw.get("notify"), path + ("notify",), el, "notify")
    for r in notify:
        if r not in s.roles:
            s.c.add(path + ("notify",), el, f"unknown role {r!r} to notify")
    return BreachPolicy(escalate=bool(raw.get("escalate", False)), notify=notify)


# --- actions that drive the programs ----------------------------------------------------------

def check_program_actions(s: Scope, actions: Mapping[str, ActionDef], supervision: SupervisionDef,
                          co_handling: CoHandlingDef | None) -> None:
    """Actions whose kind or fields drive an order or a part need the section that defines it."""
    c = s.c
    for aname, act in actions.items():
        path, el = ("actions", aname), f"action {aname}"
        if act.kind == "supervision_reply" and not supervision.levels:
            c.add(path + ("kind",), el, "kind supervision_reply needs the supervision section's levels")
        if act.supervise and supervision.levels:
            level = next((f for f in act.fields if f.name == "level"), None)
            for choice in level.choices if level is not None else ():
                if choice not in supervision.levels:
                    c.add(path + ("fields", "level"), el,
                          f"level {choice!r} is not a supervision level "
                          f"(known: {known(set(supervision.levels))})")
        co = next((f for f in act.fields if f.name == CO_HANDLERS_FIELD), None)
        if co is not None and co.type != "units":
            c.add(path + ("fields", CO_HANDLERS_FIELD), el, "co_handlers must have type units")
        if (co is not None or act.kind in _PART_KINDS) and co_handling is None:
            c.add(path, el, "co-handling parts need a co_handling section (sign_within, answer_within)")
        if co is not None and act.assign is None:
            c.add(path + ("fields", CO_HANDLERS_FIELD), el,
                  "co_handlers needs an action that assigns a lead unit ('assign')")
        if act.kind == "co_close" and not any(f.name == "unit" and f.type == "unit" for f in act.fields):
            c.add(path + ("fields",), el, "a co_close action needs a field 'unit' of type unit")
        if act.kind == "consult" and not any(f.name == "participants" and f.type == "units"
                                             for f in act.fields):
            c.add(path + ("fields",), el, "a consult action needs a field 'participants' of type units")
