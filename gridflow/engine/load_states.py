"""Loader: the ``states:`` section — each state's stage, holder and outcome, and the timers it runs."""

from __future__ import annotations

from typing import Any, Mapping

from .definition import MISFIRE_POLICIES, OUTCOMES, ActionDef, BreachPolicy, Label, StateDef, TimerDef
from .load_common import LIMIT_NAME_RE, Path_, Scope, duration, item, known, label, names, unknown_keys
from .schedules import Schedule, ScheduleError

_STATE_KEYS = {"label", "stage", "final", "pauses_sla", "holder", "timers", "outcome"}
_TIMER_KEYS = {"name", "label", "duration", "calendar", "warn_at", "on_breach", "repeat", "purpose",
               "continues_in", "misfire", "due", "warn_before", "min_allowance", "category_limit"}
_BREACH_KEYS = {"escalate", "supervise", "action", "notify"}


def parse_states(s: Scope, states_raw: dict, stages: Mapping[str, Label],
                 actions: Mapping[str, ActionDef]) -> dict[str, StateDef]:
    states: dict[str, StateDef] = {}
    for sname, sraw in states_raw.items():
        st = _state(s, sname, sraw, stages, actions)
        if st is not None:
            states[sname] = st
    return states


def _state(s: Scope, sname: Any, sraw: Any, stages: Mapping[str, Label],
           actions: Mapping[str, ActionDef]) -> StateDef | None:
    c, path, el = s.c, ("states", sname), f"state {sname}"
    if not isinstance(sname, str) or not sname.isidentifier():
        c.add(path, el, "state names must be identifiers such as 'dispatched'")
        return None
    sraw = sraw or {}
    if not isinstance(sraw, dict):
        c.add(path, el, "a state must be a mapping")
        return None
    unknown_keys(c, sraw, _STATE_KEYS, path, el)
    stage = sraw.get("stage", "")
    if stages and stage not in stages:
        c.add(path + ("stage",), el, f"unknown stage {stage!r} (declared: {', '.join(stages)})")
    final = bool(sraw.get("final", False))
    holder = names(c, sraw.get("holder"), path + ("holder",), el, "holder")
    for r in holder:
        if r not in s.roles:
            c.add(path + ("holder",), el, f"unknown role {r!r} as holder")
    outcome = sraw.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        c.add(path + ("outcome",), el, f"unknown outcome {outcome!r} (known: {known(OUTCOMES)})")
    if final and outcome is None:
        outcome = "resolved"
    timers = _timers(s, sname, sraw, final, actions, path, el)
    return StateDef(
        name=sname, label=label(c, sraw.get("label"), path + ("label",), el, sname), stage=str(stage),
        final=final, pauses_sla=bool(sraw.get("pauses_sla", False)), holder_roles=holder,
        timers=timers, outcome=outcome if final else None,
    )


# --- timers, their warnings and what a breach does --------------------------------------------

def _timers(s: Scope, sname: str, sraw: dict, final: bool, actions: Mapping[str, ActionDef], path: Path_,
            el: str) -> tuple[TimerDef, ...]:
    traw = sraw.get("timers") or []
    if traw and final:
        s.c.add(path + ("timers",), el, "a final state cannot have timers: nothing is left to wait for")
    if not isinstance(traw, list):
        s.c.add(path + ("timers",), el, "timers must be a list")
        traw = []
    timers: list[TimerDef] = []
    seen: set[str] = set()
    for i, t in enumerate(traw):
        tdef = _timer(s, sname, t, actions, path + ("timers", i), el, seen)
        if tdef is not None:
            timers.append(tdef)
    return tuple(timers)


def _timer(s: Scope, sname: str, t: Any, actions: Mapping[str, ActionDef], tpath: Path_, el: str,
           seen: set[str]) -> TimerDef | None:
    c = s.c
    if not isinstance(t, dict):
        c.add(tpath, el, "a timer must be a mapping")
        return None
    tname = t.get("name")
    tel = f"{el} / timer {tname}"
    unknown_keys(c, t, _TIMER_KEYS, tpath, tel)
    if not isinstance(tname, str) or not tname.isidentifier():
        c.add(tpath, tel, "a timer needs a 'name' such as 'acknowledge'")
        return None
    if tname in seen:
        c.add(tpath, tel, f"duplicate timer {tname!r} in state {sname!r}")
    seen.add(tname)
    dur = _length_or_schedule(s, t, tpath, tel)
    cal = t.get("calendar", s.default_calendar)
    if cal not in s.calendar_names:
        c.add(tpath + ("calendar",), tel, f"unknown calendar {cal!r} (known: {known(s.calendar_names)})")
    warn = _warnings(s, t, tpath, tel)
    policy = _breach_policy(s, sname, t, actions, tpath, tel)
    repeat = _repeat(s, t, dur, tpath, tel)
    before = tuple(b for i, raw in enumerate(_listed(t.get("warn_before")))
                   if (b := duration(c, raw, item(t, "warn_before", i, tpath), tel)) is not None)
    least = None
    if t.get("min_allowance") is not None:
        if not isinstance(dur, Schedule):
            c.add(tpath + ("min_allowance",), tel,
                  "min_allowance goes with 'due:' (a calendar-period deadline)")
        least = duration(c, t["min_allowance"], tpath + ("min_allowance",), tel)
    continues = _continues_in(s, sname, t, tpath, tel)
    misfire = t.get("misfire", "coalesce")
    if misfire not in MISFIRE_POLICIES:
        c.add(tpath + ("misfire",), tel, f"misfire must be one of {known(MISFIRE_POLICIES)}, got {misfire!r}")
        misfire = "coalesce"
    limit = t.get("category_limit")
    if limit is not None and not (isinstance(limit, str) and LIMIT_NAME_RE.match(limit)):
        c.add(tpath + ("category_limit",), tel,
              f"category_limit must name a category limit such as 'handle', got {limit!r}")
        limit = None
    if limit is not None and isinstance(dur, Schedule):
        c.add(tpath + ("category_limit",), tel,
              "category_limit goes with 'duration:' (a length), not with 'due:' (a calendar instant)")
        limit = None
    if dur is None:
        return None
    return TimerDef(
        name=tname, label=label(c, t.get("label"), tpath + ("label",), tel, tname), duration=dur,
        calendar=cal if dur.is_working_time else "24x7", warn_at=warn, on_breach=policy,
        repeat=repeat, purpose=str(t.get("purpose", tname)), continues_in=continues, misfire=misfire,
        repeat_calendar=cal if repeat is not None and repeat.is_working_time else "24x7",
        warn_before=before, min_allowance=least, category_limit=limit, working_calendar=cal,
    )


def _listed(raw: Any) -> list:
    return [] if raw is None else raw if isinstance(raw, list) else [raw]


def _length_or_schedule(s: Scope, t: dict, tpath: Path_, tel: str):
    """``duration: 2wd`` (a length) or ``due: {period: calendar_month, at: last_working_day}`` (an instant
    on the calendar, see engine/schedules.py): exactly one of them."""
    if "due" not in t:
        return duration(s.c, t.get("duration"), tpath + ("duration",), tel)
    if "duration" in t:
        s.c.add(tpath + ("due",), tel,
                "a timer has either 'duration' (a length) or 'due' (a calendar instant)")
    if "continues_in" in t:
        s.c.add(tpath + ("continues_in",), tel, "continues_in does not go with 'due:'")
    try:
        return Schedule.parse(t["due"])
    except ScheduleError as exc:
        s.c.add(tpath + ("due",), tel, str(exc))
        return None


def _repeat(s: Scope, t: dict, dur, tpath: Path_, tel: str):
    """``repeat: 7d`` (a length after each breach) or, for a ``due:`` timer, ``repeat: period`` (each next
    period's due, while the case stays where it is)."""
    raw = t.get("repeat")
    if raw is None:
        return None
    if raw == "period":
        if not isinstance(dur, Schedule):
            s.c.add(tpath + ("repeat",), tel, "repeat: period goes with 'due:' (a calendar-period deadline)")
            return None
        return dur
    return duration(s.c, raw, tpath + ("repeat",), tel)


def _continues_in(s: Scope, sname: str, t: dict, tpath: Path_, tel: str) -> tuple[str, ...]:
    """The states the running deadline carries on into (a handling limit counted from dispatch)."""
    states = names(s.c, t.get("continues_in"), tpath + ("continues_in",), tel, "continues_in")
    for i, st in enumerate(states):
        if st not in s.state_names:
            s.c.add(item(t, "continues_in", i, tpath), tel, f"unknown state {st!r} in continues_in")
        elif st == sname:
            s.c.add(item(t, "continues_in", i, tpath), tel,
                    "continues_in names the timer's own state; re-entering it restarts the timer")
    return states


def _warnings(s: Scope, t: dict, tpath: Path_, tel: str) -> tuple[float, ...]:
    warn = t.get("warn_at") or []
    if not isinstance(warn, list):
        warn = [warn]
    for w in warn:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w < 1:
            s.c.add(tpath + ("warn_at",), tel, f"warn_at {w!r} must be a fraction between 0 and 1, e.g. 0.75")
    return tuple(sorted(float(w) for w in warn if isinstance(w, (int, float)) and 0 < w < 1))


def _breach_policy(s: Scope, sname: str, t: dict, actions: Mapping[str, ActionDef], tpath: Path_,
                   tel: str) -> BreachPolicy:
    c = s.c
    bpath = tpath + ("on_breach",)
    braw = t.get("on_breach") or {}
    if not isinstance(braw, dict):
        c.add(bpath, tel, "on_breach must be a mapping")
        braw = {}
    unknown_keys(c, braw, _BREACH_KEYS, bpath, tel)
    baction = braw.get("action")
    if baction is not None:
        act = actions.get(baction)
        if act is None:
            c.add(bpath + ("action",), tel, f"breach action {baction!r} is not an action of this workflow")
        elif sname not in act.sources:
            c.add(bpath + ("action",), tel, f"breach action {baction!r} cannot be taken from state {sname!r}")
        elif any(f.required for f in act.fields):
            c.add(bpath + ("action",), tel,
                  f"breach action {baction!r} has required fields; the system cannot fill them in")
    notify = names(c, braw.get("notify"), bpath + ("notify",), tel, "notify")
    for r in notify:
        if r not in s.roles:
            c.add(bpath + ("notify",), tel, f"unknown role {r!r} to notify")
    return BreachPolicy(bool(braw.get("escalate", False)), bool(braw.get("supervise", False)), baction,
                        notify)

