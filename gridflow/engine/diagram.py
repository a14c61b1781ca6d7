"""A workflow definition drawn as a Mermaid ``stateDiagram-v2``, in Chinese or English.

Stages are shown as a style class per stage plus a description line on each
state, not as composite states: Mermaid cannot draw a transition between states
inside two different composite states, and cases cross stages all the time.
Edges carry the action's label; a routed action draws one edge per route with
the condition, and its default edge marked "otherwise"; an action the system
takes on a breach is marked ⏱, one that escalates ↑. Notes (optional) give each
state's timers and the actions that leave the case where it is.
"""

from __future__ import annotations

from typing import Any

from .definition import ROLE_LABELS, ActionDef, Label, StateDef, TimerDef, WorkflowDefinition

__all__ = ["to_mermaid"]

# Fill colours for stages, in the order stages are declared (cycled if there are more).
_PALETTE = ("#e8f1fb", "#fdf3e1", "#e9f7ef", "#f6e9f7", "#fbeaea", "#eef0f2", "#fff8d6", "#e6f6f8")
# Characters that end or split a Mermaid statement or label, and their harmless look-alikes.
_UNSAFE = str.maketrans({'"': "'", ":": "：", ";": "；", "#": "＃", "{": "(", "}": ")", "\n": " ", "\r": " "})

_WORDS = {
    "zh": {
        "otherwise": "其他", "warn": "预警", "on_breach": "超期", "escalate": "升级", "supervise": "督办",
        "notify": "通知", "repeat": "此后每{d}重复", "continues": "延续至{s}", "also": "可办理",
        "calendar": "日历", "category": "事项有{n}时限的按事项", "pauses": "暂停计时", "stage": "阶段",
        "ladder": "升级层级",
        "and": "、", "none": "无", "sep": "；", "colon": "：", "true": "是", "false": "否",
    },
    "en": {
        "otherwise": "otherwise", "warn": "warn at", "on_breach": "on breach", "escalate": "escalate",
        "supervise": "supervise", "notify": "notify", "repeat": "again every {d}",
        "continues": "runs on into {s}", "also": "also", "calendar": "calendar", "pauses": "SLA clock paused",
        "category": "or the category's {n} limit",
        "stage": "stage", "ladder": "escalation",
        "and": ", ", "none": "none", "sep": "; ", "colon": ": ", "true": "yes", "false": "no",
    },
}


_ROUTE_SIGNS = {"ne": "≠", "gte": "≥", "gt": ">", "lte": "≤", "lt": "<"}


def _text(value: Any) -> str:
    return str(value).translate(_UNSAFE).strip()


def _say(label: Label | None, lang: str, fallback: str) -> str:
    return _text(label.get(lang) if label is not None else fallback)


def to_mermaid(defn: WorkflowDefinition, lang: str = "zh", *, notes: bool = True) -> str:
    """The Mermaid source of ``defn``'s state diagram; ``lang`` is "zh" or "en"."""
    if lang not in _WORDS:
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")
    w = _WORDS[lang]
    ladder = " → ".join(
        _say(defn.escalation.labels.get(level), lang, level) for level in defn.escalation.levels
    )
    out = [
        "---",
        f"title: {_say(defn.label, lang, defn.name)} ({defn.key})",
        "---",
        "stateDiagram-v2",
        f"    %% {w['ladder']}: {ladder}",
    ]

    # Stages in declaration order (then any stage a state names undeclared), each with its states.
    stage_order = dict.fromkeys(list(defn.stages) + [s.stage for s in defn.states.values()])
    groups = [(stage, [s for s in defn.states.values() if s.stage == stage]) for stage in stage_order]
    groups = [(stage, members) for stage, members in groups if members]
    for stage, members in groups:
        stage_name = _say(defn.stages.get(stage), lang, stage or "-")
        out.append(f"    %% {w['stage']}: {stage_name}")
        for st in members:
            out.append(f"    state \"{_say(st.label, lang, st.name)}\" as {st.name}")
            out.append(f"    {st.name} : {stage_name}")

    out.append(f"    [*] --> {defn.initial}")
    breach_actions = {t.on_breach.action for s in defn.states.values() for t in s.timers}
    for act in defn.actions.values():
        label = _action_label(act, lang, act.name in breach_actions)
        for source in act.sources:
            for route in act.routes:
                if route.stay:  # recorded, no move: nothing to draw
                    continue
                field = next((f for f in act.fields if f.name == route.field), None)
                sign = _ROUTE_SIGNS.get(route.op, "=")
                cond = f"{_say(field.label if field else None, lang, route.field)}{sign}" + "/".join(
                    _value(v, lang) for v in route.values)
                out.append(f"    {source} --> {route.dest} : {label} ({cond})")
            if act.dest is not None:
                suffix = f" ({w['otherwise']})" if act.routes else ""
                out.append(f"    {source} --> {act.dest} : {label}{suffix}")
    for st in defn.states.values():
        if st.final:
            out.append(f"    {st.name} --> [*]")

    if notes:
        for st in defn.states.values():
            lines = _note_lines(defn, st, lang)
            if lines:
                out.append(f"    note right of {st.name}")
                out.extend(f"        {line}" for line in lines)
                out.append("    end note")

    for i, (stage, members) in enumerate(groups):
        cls = _class_name(stage)
        out.append(f"    classDef {cls} fill:{_PALETTE[i % len(_PALETTE)]},stroke:#5b6770")
        out.append(f"    class {','.join(st.name for st in members)} {cls}")
    return "\n".join(out) + "\n"


def _value(value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return _WORDS[lang]["true" if value else "false"]
    return _text(value)


def _role(role: str, lang: str) -> str:
    return _say(ROLE_LABELS.get(role), lang, role)


def _class_name(stage: str) -> str:
    return "stage_" + ("".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in stage) or "none")


def _action_label(act: ActionDef, lang: str, by_breach: bool) -> str:
    text = _say(act.label, lang, act.name)
    if by_breach or act.roles == ("system",):
        text = "⏱ " + text
    if act.escalate:
        text += " ↑"
    return text


def _note_lines(defn: WorkflowDefinition, st: StateDef, lang: str) -> list[str]:
    w = _WORDS[lang]
    lines = [_timer_line(defn, t, lang) for t in st.timers]
    if st.pauses_sla and not st.final:
        lines.append(w["pauses"])
    internal = [_say(a.label, lang, a.name) for a in defn.actions.values()
                if st.name in a.sources and a.internal]
    if internal:
        lines.append(f"{w['also']}{w['colon']}{w['and'].join(internal)}")
    return lines


def _timer_line(defn: WorkflowDefinition, t: TimerDef, lang: str) -> str:
    w = _WORDS[lang]
    parts = [f"⏲ {_say(t.label, lang, t.name)} {t.duration}"]
    if t.category_limit:
        parts.append(w["category"].format(n=t.category_limit))
    if t.calendar != defn.calendar and t.duration.is_working_time:
        parts.append(f"{w['calendar']} {t.calendar}")
    if t.warn_at:
        parts.append(f"{w['warn']} " + "/".join(f"{round(f * 100)}%" for f in t.warn_at))
    policy = t.on_breach
    effects = []
    if policy.escalate:
        effects.append(w["escalate"])
    if policy.supervise:
        effects.append(w["supervise"])
    if policy.action:
        effects.append("⏱ " + _say(defn.actions[policy.action].label, lang, policy.action))
    if policy.notify:
        effects.append(f"{w['notify']} " + "/".join(_role(r, lang) for r in policy.notify))
    parts.append(f"{w['on_breach']}{w['colon']}{w['and'].join(effects) or w['none']}")
    if t.repeat is not None:
        parts.append(w["repeat"].format(d=t.repeat))
    if t.continues_in:
        into = "/".join(_say(defn.states[s].label, lang, s) for s in t.continues_in)
        parts.append(w["continues"].format(s=into))
    return w["sep"].join(parts)
