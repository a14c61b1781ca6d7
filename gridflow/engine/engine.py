"""The engine decides; it never acts.

Given a case snapshot, an action (or a due timer) and ``now``, :class:`Engine`
returns a :class:`Decision`: the new snapshot, the history events to append,
the timers to schedule and the deadlines whose timers to cancel — or raises a
typed error saying why not. It performs no I/O and reads no wall clock.

State moves are compiled once per workflow version into a ``transitions``
machine shared by every case (cached for as long as the definition lives).
A case never becomes a model of it: the engine reads, per (state, action), the
machine's transitions in the order ``transitions`` would try them and takes
the first whose conditions (the action's routes) hold. That is what
``Event.trigger`` resolves, without the callback, queue and logging machinery
gridflow does not use — it costs several times less per decision; a unit test
holds the two to the same answers.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import fields
from datetime import date, datetime, timedelta, timezone
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Callable, Mapping

from transitions import Machine

from .calendar import CalendarRegistry
from .case import (
    BREACH, WARNING, Actor, CaseSnapshot, Deadline, Decision, Event, Notification, TimerSpec,
)
from .clock import ensure_aware
from .clocks import coalesce, extra_seconds, nominal_seconds, retimed_total
from .definition import (
    ASSIGN_ACTOR, ASSIGN_DISPATCHER, ASSIGN_ORIGIN, BREACH_NOTIFY, CATEGORY_LIMITS_KEY, DISPATCHER_KEY,
    EXTENSION_TOTAL_KEY,
    EXTENSIONS_APPROVED_KEY, CASE_LEVEL, HOLDER, RETURNED_BY_KEY, ActionDef, Label, Route, StateDef, TimerDef,
    WorkflowDefinition,
)
from .durations import WORKING_DAYS, WORKING_HOURS, Duration, DurationError
from .errors import ActionNotAllowed, GuardFailed, RoleNotAllowed, UnknownAction
from .explanation import DeadlineExplanation
from .guards import ESCALATION_UNITS, GuardContext, GuardRegistry, default_guards
from .orders import FOLLOW_UPS, Orders
from .parts import Parts
from .payload import validate_payload
from .schedules import working_days_before

#: Case data the engine keeps for calendar-period deadlines: timer -> the first day of the last period met.
PERIODS_MET_KEY = "periods_met"

# id(definition) -> its machine; an entry lives exactly as long as its definition, so a
# definition built later at the same address can never be served a stale machine.
_MACHINES: dict[int, Machine] = {}

_SYSTEM = Actor.system()
_DEADLINE_FIELDS = tuple(f.name for f in fields(Deadline))
_DEADLINE_INDEX = {name: i for i, name in enumerate(_DEADLINE_FIELDS)}
_deadline_values = attrgetter(*_DEADLINE_FIELDS)


def _evolve(d: Deadline, **changes: Any) -> Deadline:
    """``dataclasses.replace`` for the hot path: the same result without its per-call introspection."""
    values = list(_deadline_values(d))
    for name, value in changes.items():
        values[_DEADLINE_INDEX[name]] = value
    return Deadline(*values)

# One candidate move: the route conditions that must all hold, and the destination.
_Move = tuple[tuple[Callable[..., bool], ...], str]


def _parsed(text: Any, fallback: Duration | None) -> Duration | None:
    """A duration as a snapshot keeps it; ``fallback`` if it does not parse (never raised mid-decision)."""
    try:
        return _parse_duration(text)
    except (DurationError, TypeError):
        return fallback


@functools.lru_cache(maxsize=256)
def _parse_duration(text: Any) -> Duration:
    return Duration.parse(text)


def compile_machine(defn: WorkflowDefinition) -> Machine:
    """One shared ``transitions`` machine per workflow version (cached while ``defn`` lives)."""
    key = id(defn)
    machine = _MACHINES.get(key)
    if machine is None:
        machine = Machine(
            model=None, states=list(defn.states), initial=defn.initial, auto_transitions=False,
            ignore_invalid_triggers=False,
            transitions=[t for a in defn.actions.values() for t in _transitions_of(a)],
        )
        _MACHINES[key] = machine
        weakref.finalize(defn, _MACHINES.pop, key, None)
    return machine


def _route_condition(route: Route):
    def condition(payload: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None) -> bool:
        return route.holds(payload, data)

    return condition


def _transitions_of(a: ActionDef) -> list[dict[str, Any]]:
    """Routed actions become conditional transitions, tried in order, then the default."""
    out: list[dict[str, Any]] = [
        {"trigger": a.name, "source": list(a.sources), "dest": r.dest,
         "conditions": [_route_condition(r)]}
        for r in a.routes if not r.stay  # stay routes are tried first, by Engine.destination
    ]
    if a.dest is not None or not a.routes:
        out.append({"trigger": a.name, "source": list(a.sources), "dest": a.dest})
    return out


def _move_table(machine: Machine, defn: WorkflowDefinition) -> dict[tuple[str, str], tuple[_Move, ...]]:
    """(state, action) -> the machine's transitions for it, in the order a trigger tries them."""
    table: dict[tuple[str, str], tuple[_Move, ...]] = {}
    for a in defn.actions.values():
        for s in a.sources:
            table[(s, a.name)] = tuple(
                (tuple((c.func, c.target) for c in t.conditions), t.dest)
                for t in machine.get_transitions(trigger=a.name, source=s) if t.dest is not None
            )
    return table


class _Work:
    """Mutable scratch copy of a snapshot while one decision is being built."""

    __slots__ = ("case", "now", "state", "level", "supervised", "holder", "data", "deadlines", "seq",
                 "breach_count", "paused_seconds", "paused_since", "closed_at", "outcome", "events",
                 "schedule", "cancel", "notes", "escalated_to")

    def __init__(self, case: CaseSnapshot, now: datetime) -> None:
        self.case = case
        self.now = now
        self.state = case.state
        self.level = case.escalation_level
        self.supervised = case.supervised
        self.holder = case.holder_unit
        self.data: dict[str, Any] | None = None
        self.deadlines: dict[str, Deadline] = {d.id: d for d in case.deadlines}
        self.seq = case.deadline_seq
        self.breach_count = case.breach_count
        self.paused_seconds = case.sla_paused_seconds
        self.paused_since = case.paused_since
        self.closed_at = case.closed_at
        self.outcome = case.outcome
        self.events: list[Event] = []
        self.schedule: list[TimerSpec] = []
        self.cancel: list[str] = []
        self.notes: list[Notification] = []
        self.escalated_to: str | None = None

    def mutable_data(self) -> dict[str, Any]:
        if self.data is None:
            self.data = dict(self.case.data)
        return self.data

    def event(self, type_: str, actor: Actor, **data: Any) -> None:
        self.events.append(Event(type_, self.now, actor.id, actor.role, data))

    def decision(self) -> Decision:
        c = self.case
        if not self.events:
            return Decision(c)  # nothing happened (a stale timer): the snapshot stands as it was
        # Positional on purpose: the one snapshot copy per decision, twice as fast as dataclasses.replace().
        snap = CaseSnapshot(
            c.number, c.workflow, c.version, self.state, c.opened_at, self.now, self.level, c.escalation_top,
            self.supervised, self.holder, c.origin_unit, c.reporter,
            MappingProxyType(self.data) if self.data is not None else c.data,
            tuple(self.deadlines.values()), self.seq, self.breach_count, self.paused_seconds,
            self.paused_since, self.closed_at, self.outcome,
        )
        # A deadline stopped or re-planned after timers were planned for it voids those plans.
        deadlines = self.deadlines
        schedule = []
        for t in self.schedule:
            d = deadlines.get(t.deadline_id)
            if d is not None and d.generation == t.generation:
                schedule.append(t)
        cancel = self.cancel
        return Decision(snap, tuple(self.events), tuple(schedule),
                        tuple(dict.fromkeys(cancel)) if len(cancel) > 1 else tuple(cancel),
                        tuple(self.notes), self.escalated_to)


class Engine:
    def __init__(self, definition: WorkflowDefinition, calendars: CalendarRegistry,
                 guards: GuardRegistry | None = None) -> None:
        self.definition = definition
        self.calendars = calendars
        self.guards = guards if guards is not None else default_guards()
        self.machine = compile_machine(definition)
        self._moves = _move_table(self.machine, definition)
        self._allowed: dict[str, tuple[str, ...]] = {
            s: tuple(a.name for a in definition.actions_from(s)) for s in definition.states
        }
        self._timers: dict[tuple[str, str], TimerDef] = {
            (s.name, t.name): t for s in definition.states.values() for t in s.timers
        }
        # action -> (case data key, payload field it copies or None, literal value) for ``set:``;
        # a value written ``$data.key`` copies case data instead (the field is then ``data.key``).
        self._orders, self._parts = Orders(self), Parts(self)  # case-level programs (orders.py, parts.py)
        self._timers.update({**self._orders.timers, **self._parts.timers})
        # action -> (case data key, payload field it copies or None, literal value) for ``set:``
        self._sets: dict[str, tuple[tuple[str, str | None, Any], ...]] = {
            a.name: tuple((k, v[1:], None) if isinstance(v, str) and v.startswith("$") else (k, None, v)
                          for k, v in a.sets.items())
            for a in definition.actions.values()
        }
        # States where the street gives its verdict on a returned case.
        self._verdict_states = frozenset(s for a in definition.actions.values() if a.return_verdict
                                         for s in a.sources)
        # timer name -> the first action that extends it, per state (what an extension request is for)
        self._extended_timer: dict[str, str] = {
            s: a.extend[0] for a in reversed(tuple(definition.actions.values())) if a.extend
            for s in a.sources
        }
        self._notices: dict[str, tuple[str, tuple[str, ...]]] = {
            kind: (n.message, n.to) for kind, n in definition.notifications.items()
        }
        # action -> its ``stay: true`` routes, tried before the others (recorded, no move)
        self._stays: dict[str, tuple[Route, ...]] = {
            a.name: tuple(r for r in a.routes if r.stay) for a in definition.actions.values()
            if any(r.stay for r in a.routes)
        }
        self._entry_timers: dict[str, tuple[tuple[TimerDef, str], ...]] = {
            s.name: tuple((t, str(t.duration)) for t in s.timers) for s in definition.states.values()
        }

    # --- queries ------------------------------------------------------------------------------

    def allowed_actions(self, case: CaseSnapshot, role: str | None = None) -> list[str]:
        names = self._allowed.get(case.state, ())
        if role is None:
            return list(names)
        return [n for n in names if role in self.definition.actions[n].roles]

    def timer_def(self, state: str, name: str) -> TimerDef | None:
        """The timer a deadline runs on: a state's, or a case-level one (an order's, a part's)."""
        return self._timers.get((state, name))

    def destination(self, state: str, action: str, payload: Mapping[str, Any] | None = None,
                    data: Mapping[str, Any] | None = None) -> str | None:
        """Where ``action`` takes a case in ``state`` with this (clean) payload and case data (as it
        stands before the action); None: it stays put."""
        stays = self._stays.get(action) if self._stays else None
        if stays and any(r.holds(payload, data) for r in stays):
            return None
        for conditions, dest in self._moves.get((state, action), ()):
            for func, target in conditions:
                if func(payload=payload, data=data) != target:
                    break
            else:
                return dest
        return None

    # --- commands -----------------------------------------------------------------------------

    def open(self, number: str, actor: Actor, now: datetime, *, payload: Mapping[str, Any] | None = None,
             origin_unit: str | None = None, holder_unit: str | None = None,
             data: Mapping[str, Any] | None = None, reported: Mapping[str, Any] | None = None) -> Decision:
        """Start a case in the initial state, with the initial state's timers running.

        ``reported``: facts the intake adds to ``CaseReported`` (the channel, on whose behalf)."""
        now = ensure_aware(now, "now")
        defn = self.definition
        blank = CaseSnapshot(
            number=number, workflow=defn.name, version=defn.version, state=defn.initial, opened_at=now,
            updated_at=now, escalation_top=defn.escalation.top, origin_unit=origin_unit,
            holder_unit=holder_unit or origin_unit, reporter=actor.id,
            data=MappingProxyType(dict(data or {})),
        )
        w = _Work(blank, now)
        w.event("CaseReported", actor, state=defn.initial, workflow=defn.key, origin_unit=origin_unit,
                **({"payload": dict(payload)} if payload else {}), **dict(reported or {}))
        self._enter(w, defn.initial, actor, resumed=set())
        return w.decision()

    def act(self, case: CaseSnapshot, action: str, actor: Actor, payload: Mapping[str, Any] | None,
            now: datetime) -> Decision:
        now = self._now(case, now)
        act = self.definition.actions.get(action)
        if act is None:
            raise UnknownAction(f"workflow {self.definition.key} has no action {action!r}", action=action,
                                allowed=self.allowed_actions(case, actor.role))
        if case.state not in act.sources:
            allowed = self.allowed_actions(case, actor.role)
            raise ActionNotAllowed(
                f"cannot {action} a case in state {case.state!r}; "
                f"actions open to {actor.role} here: {', '.join(allowed) or 'none'}",
                action=action, state=case.state, allowed=allowed,
            )
        if actor.role not in act.roles:
            raise RoleNotAllowed(f"role {actor.role!r} may not {action} "
                                 f"(allowed roles: {', '.join(act.roles)})",
                                 action=action, role=actor.role, roles=list(act.roles))
        clean = validate_payload(act, payload)
        if act.guards:
            refusal = self._refusal(case, act, actor, clean, now)
            if refusal is not None:
                guard, reason = refusal
                raise GuardFailed(f"cannot {action}: {reason}", action=action, guard=guard, reason=reason)
        w = _Work(case, now)
        self._apply(w, act, actor, clean)
        return w.decision()

    def enter_state(self, case: CaseSnapshot, actor: Actor, now: datetime) -> Decision:
        """Start afresh the deadlines of the state the case is in, as if it had just entered it.

        For a case moved onto another workflow version (or another state) by an administrator:
        deadlines it still carries are stopped, its state's timers start now, and a final state
        closes it. The caller records why (e.g. a ``WorkflowMigrated`` event).
        """
        now = self._now(case, now)
        st = self.definition.states.get(case.state)
        if st is None:
            raise ActionNotAllowed(f"workflow {self.definition.key} has no state {case.state!r}",
                                   state=case.state, allowed=[])
        w = _Work(case, now)
        for d in list(w.deadlines.values()):
            if d.state != CASE_LEVEL:
                self._stop(w, d, actor, "restarted")
        self._arrive(w, st, actor, resumed=set())
        return w.decision()

    def fire(self, case: CaseSnapshot, timer: TimerSpec, now: datetime) -> Decision:
        """Fire a due timer. A stale timer (already fired, or the case moved on) yields no events."""
        now = self._now(case, now)
        d = case.deadline(timer.deadline_id)
        if d is None or d.generation != timer.generation or d.run_since is None or case.closed_at is not None:
            return Decision(case)
        tdef = self._timers.get((d.state, d.timer))
        if tdef is None:
            return Decision(case)
        if timer.kind in FOLLOW_UPS:
            return self._orders.follow_up(_Work(case, now), d, tdef, timer)
        if timer.kind == WARNING:
            # A warning after the breach (a runner firing late and out of order) says nothing new.
            if timer.seq in d.warned or d.breaches or timer.seq >= tdef.warnings:
                return Decision(case)
            if tdef.misfire == "coalesce" and now >= d.due_at:
                return Decision(case)  # caught up after downtime: the breach says it all
            return self._warn(case, d, tdef, timer, now)
        if timer.kind != BREACH or timer.seq <= d.breaches:
            return Decision(case)
        return self._breach(case, d, tdef, timer, now)

    # --- explanation --------------------------------------------------------------------------

    def explain(self, case: CaseSnapshot, now: datetime) -> tuple[DeadlineExplanation, ...]:
        """Why a case is (or is not) overdue: one entry per active deadline."""
        now = self._now(case, now)
        out = []
        for d in case.deadlines:
            used = self._used(d, now)
            tdef = self._timers.get((d.state, d.timer))
            label = tdef.label if tdef else Label(d.timer, d.timer)
            cal = self.calendars.get(d.calendar)
            out.append(DeadlineExplanation.of(d, label, cal.describe(), used, self._light(d, used, tdef),
                                              estimated_years=cal.estimated_years(d.started_at, d.due_at)))
        return tuple(out)

    def sla_status(self, case: CaseSnapshot, now: datetime) -> dict[str, Any]:
        """The most urgent deadline's traffic light and working time left, for worklists."""
        now = self._now(case, now)
        st = self.definition.states.get(case.state)
        if st is not None and st.pauses_sla and not st.final:
            return self._suspended_status(case)
        worst: dict[str, Any] = {"light": "none", "left_s": None, "due_at": None, "deadline": None}
        rank = {"none": 0, "green": 1, "yellow": 2, "red": 3}
        most_urgent = float("inf")
        for d in case.deadlines:
            if not d.is_running:
                continue
            used = self._used(d, now)
            light = self._light(d, used, self._timers.get((d.state, d.timer)))
            left = d.total - used
            if rank[light] > rank[worst["light"]] or (light == worst["light"] and left < most_urgent):
                most_urgent = left
                worst = {"light": light, "left_s": round(left, 1), "due_at": d.due_at, "deadline": d.id}
        return worst

    @staticmethod
    def _suspended_status(case: CaseSnapshot) -> dict[str, Any]:
        """A case in a pausing state (挂起) shows as suspended, with the time its paused deadline has left."""
        paused = [d for d in case.deadlines if not d.is_running]
        if not paused:
            return {"light": "suspended", "left_s": None, "due_at": None, "deadline": None}
        d = min(paused, key=lambda p: p.total - p.consumed)
        return {"light": "suspended", "left_s": round(d.total - d.consumed, 1), "due_at": None,
                "deadline": d.id}

    @staticmethod
    def _light(d: Deadline, used: float, tdef: TimerDef | None) -> str:
        if d.breaches or used >= d.total:
            return "red"
        if tdef is not None and tdef.warn_before and not tdef.warn_at:  # yellow from the warning on
            return "yellow" if d.warned else "green"
        first_warn = tdef.warn_at[0] if tdef and tdef.warn_at else 0.75
        return "yellow" if d.warned or used >= first_warn * d.total else "green"

    # --- internals ----------------------------------------------------------------------------

    @staticmethod
    def _now(case: CaseSnapshot, now: datetime) -> datetime:
        if now.tzinfo is not timezone.utc:
            now = ensure_aware(now, "now")
        # The SLA clock never runs backwards, even if two processes' clocks disagree.
        return now if now >= case.updated_at else case.updated_at

    def _refusal(self, case: CaseSnapshot, act: ActionDef, actor: Actor, payload: dict[str, Any],
                 now: datetime) -> tuple[str, str] | None:
        """The first guard of ``act`` that refuses, and why; None when all pass."""
        ctx = GuardContext(case, act.name, actor, MappingProxyType(payload), now, self.definition.limits,
                           lambda amount: self._extension_measure(case, amount))
        for g in act.guards:
            reason = self.guards.check(g, ctx)
            if reason is not None:
                return g, reason
        return None

    def _extension_measure(self, case: CaseSnapshot, amount: str) -> float:
        """How much an extension of ``amount`` counts against the workflow's cap (``nominal_seconds`` on
        the calendar of the deadline it extends)."""
        dur = Duration.parse(amount)
        timer = self._extended_timer.get(case.state)
        for d in case.deadlines:
            if timer is None or d.timer == timer:
                return nominal_seconds(dur, d.due_at, self.calendars.get(d.calendar))
        return nominal_seconds(dur, case.updated_at, self.calendars.get(self.definition.calendar))

    def _warn(self, case: CaseSnapshot, d: Deadline, tdef: TimerDef, timer: TimerSpec,
              now: datetime) -> Decision:
        w = _Work(case, now)
        w.deadlines[d.id] = _evolve(d, warned=d.warned + (timer.seq,))
        due = d.due_at.isoformat()
        n = len(tdef.warn_at)
        when = {"fraction": tdef.warn_at[timer.seq]} if timer.seq < n else {
            "before": str(tdef.warn_before[timer.seq - n])}
        w.event("DeadlineWarned", _SYSTEM, deadline=d.id, timer=d.timer, **when,
                due_at=due, light="yellow", timer_due_at=timer.due_at.isoformat())
        w.notes.append(self._notification(
            "warned", case.number, w.holder, {"deadline": d.id}, self._holder_roles(d.state),
            timer=tdef.label.zh, timer_en=tdef.label.en, due=due))
        return w.decision()

    def _breach(self, case: CaseSnapshot, d: Deadline, tdef: TimerDef, timer: TimerSpec,
                now: datetime) -> Decision:
        w = _Work(case, now)
        system = _SYSTEM
        w.breach_count += 1
        lateness = max(0.0, (now - timer.due_at).total_seconds())
        nxt, missed = None, 0
        if tdef.repeat is not None:
            cal = self._repeat_calendar(d, tdef, w.holder)
            if tdef.misfire == "coalesce":
                nxt, missed = coalesce(tdef.repeat, timer.due_at, now, cal)
            else:
                nxt = tdef.repeat.due(timer.due_at, cal)
        periods = {}
        if tdef.scheduled:  # the period breached, and the one the repeat now waits on
            cal = self.calendars.get(d.calendar)
            periods["period"] = self._period_label(tdef, timer.due_at, cal)
            if nxt is not None:
                periods["next_period"] = self._period_label(tdef, nxt, cal)
        w.event("DeadlineBreached", system, deadline=d.id, timer=d.timer, breach=timer.seq,
                due_at=timer.due_at.isoformat(), lateness_s=round(lateness, 3), light="red", missed=missed,
                **periods)
        st = self.definition.states.get(d.state)  # none for a case-level deadline (an order, a part)
        if st is not None and st.pauses_sla:  # a timer of a pausing state is the pause's ceiling
            w.event("SuspensionLimitReached", system, deadline=d.id)
        policy = tdef.on_breach
        if policy.notify:
            w.notes.append(self._notification(
                "breached", case.number, w.holder, {"deadline": d.id},
                self._holder_roles(d.state), policy.notify, timer=tdef.label.zh,
                timer_en=tdef.label.en, due=d.due_at.isoformat()))
        if policy.supervise:
            self._supervise(w, system, reason=f"deadline {d.id} breached")
        if policy.escalate:
            self._escalate(w, system, reason=f"deadline {d.id} breached")
        if nxt is not None:
            w.schedule.append(TimerSpec(d.id, BREACH, timer.seq + 1, d.generation, nxt))
        w.deadlines[d.id] = _evolve(d, breaches=timer.seq, next_breach_at=nxt)
        self._orders.breached(w, d, tdef, timer)
        if policy.action is not None:
            self._breach_action(w, self.definition.actions[policy.action], d.id)
        return w.decision()

    def _breach_action(self, w: _Work, act: ActionDef, deadline: str) -> None:
        """The system takes the breach action, if its guards (on the case as it was) let it."""
        system = _SYSTEM
        if w.state not in act.sources:
            return
        refusal = self._refusal(w.case, act, system, {}, w.now) if act.guards else None
        if refusal is None:
            self._apply(w, act, system, {})
        else:
            w.event("BreachActionRefused", system, deadline=deadline, action=act.name, guard=refusal[0],
                    reason=refusal[1])

    def _apply(self, w: _Work, act: ActionDef, actor: Actor, payload: dict[str, Any]) -> None:
        source = w.state
        before = w.data if w.data is not None else w.case.data
        dest = self.destination(source, act.name, payload, before)  # None for internal actions
        taken = {"action": act.name, "kind": act.kind, "from_state": source, "to_state": dest or source}
        if payload:
            taken["payload"] = payload
        if actor.unit:
            taken["unit"] = actor.unit
        w.events.append(Event("ActionTaken", w.now, actor.id, actor.role, taken))
        if act.sets or act.clears or act.count:
            self._write_data(w, act, payload, before)
        if act.kind == "return" or act.return_verdict:
            self._returned(w, act, actor, dest)
        if act.assign is not None:
            self._assign(w, act, actor, payload, dest or source)
        if act.extend is not None:
            self._extend(w, actor, act.extend, payload)
        if act.supervise:
            self._supervise(w, actor, reason=f"action {act.name}", payload=payload)
        if act.escalate:
            self._escalate(w, actor, reason=f"action {act.name}")
        if act.deescalate and not (dest is None and act.destinations):  # a stay route: nothing resumed
            self._deescalate(w, actor, reason=f"action {act.name}")
        self._parts.apply(w, act, actor, payload)
        self._orders.apply(w, act, actor, payload)
        if dest is not None:
            self._move(w, source, dest, actor)

    def _write_data(self, w: _Work, act: ActionDef, payload: Mapping[str, Any],
                    before: Mapping[str, Any]) -> None:
        """``clear:``, then ``set:`` (``$field`` from the payload, ``$data.key`` from the case as it
        stood), then ``count:`` (integer counters, +1)."""
        data = w.mutable_data()
        for key in act.clears:
            data.pop(key, None)
        for key, field, value in self._sets[act.name]:
            if field is None:
                data[key] = value
            elif field.startswith("data."):
                data[key] = before.get(field[5:])
            else:
                data[key] = payload.get(field)
        for key in act.count:
            data[key] = int(data.get(key) or 0) + 1

    def _returned(self, w: _Work, act: ActionDef, actor: Actor, dest: str | None) -> None:
        """退单 and the street's review of it: who returned the case, and the verdict on it."""
        data = w.mutable_data()
        if act.kind == "return":
            if actor.unit:
                data[RETURNED_BY_KEY] = actor.unit
            if dest in self._verdict_states:
                w.event("ReturnReviewRequested", actor, unit=actor.unit, count=int(data.get("returns") or 0))
            return
        unit = data.get(RETURNED_BY_KEY)
        upheld = act.return_verdict == "upheld"
        w.event("ReturnReviewed", actor, unit=unit, upheld=upheld)
        if upheld:
            w.event("ImproperReturnRecorded", actor, unit=unit)

    def _assign(self, w: _Work, act: ActionDef, actor: Actor, payload: Mapping[str, Any], state: str) -> None:
        assign = act.assign
        data = w.data if w.data is not None else w.case.data
        if assign == ASSIGN_ORIGIN:
            target = w.case.origin_unit
        elif assign == ASSIGN_DISPATCHER:
            target = data.get(DISPATCHER_KEY) or w.case.origin_unit
        elif assign == ASSIGN_ACTOR:  # 提级办理: the taker's unit holds the case
            target = actor.unit
        elif assign.startswith("$data."):
            target = data.get(assign[6:])
        else:  # a unit the actor names: the actor's unit dispatched the case
            target = payload.get(assign)
            if target and actor.unit:
                w.mutable_data()[DISPATCHER_KEY] = actor.unit
        if target and target != w.holder:
            w.event("CaseAssigned", actor, from_unit=w.holder, to_unit=target)
            w.notes.append(self._notification(
                "assigned", w.case.number, target, {"from_unit": w.holder, "action": act.name},
                self._holder_roles(state), action=act.label.zh, action_en=act.label.en,
                unit=target, from_unit=w.holder))
            w.holder = target

    def _holder_roles(self, state: str) -> tuple[str, ...]:
        st = self.definition.states.get(state)  # none for a case-level deadline
        return st.holder_roles if st is not None else ()

    def _move(self, w: _Work, source: str, dest: str, actor: Actor) -> None:
        dst = self.definition.states[dest]
        pausing = dst.pauses_sla and not dst.final
        resumed: set[str] = set()  # timers carried on into dst: its own of that name do not start
        for d in list(w.deadlines.values()):
            if d.state == CASE_LEVEL:  # case-level deadlines (orders, parts) ignore state moves
                continue
            carries_on = source != dest and not dst.final and (d.state == dest or self._continues(d, dest))
            if d.run_since is not None:  # running: it pauses in a pausing state, carries on or stops
                if pausing:
                    self._pause(w, d, actor)
                elif carries_on and d.state != dest:
                    self._carry_on(w, d, dst, actor)
                    resumed.add(d.timer)
                else:
                    self._stop(w, d, actor, "state_left", meets=not dst.final)
            elif carries_on:  # paused, and back where it runs
                self._resume(w, self._retag(d, dst, self._data(w)), actor)
                resumed.add(d.timer)
            elif not pausing:
                self._stop(w, d, actor, "state_left", meets=not dst.final)
        self._arrive(w, dst, actor, resumed)

    def _continues(self, d: Deadline, dest: str) -> bool:
        tdef = self._timers.get((d.state, d.timer))
        return tdef is not None and dest in tdef.continues_in

    def _retag(self, d: Deadline, dst: StateDef, data: Mapping[str, Any]) -> Deadline:
        """The deadline under ``dst``'s timer of the same name (its limit, warnings, repeat and breach
        policy from now on), its allowance recomputed from the original start if the limit differs."""
        old, new = self._timers.get((d.state, d.timer)), self._timers.get((dst.name, d.timer))
        if new is None or old is None or d.state == dst.name:
            return d
        if new.scheduled or old.scheduled:
            return _evolve(d, state=dst.name)
        old_limit, new_limit = _parsed(d.duration, old.duration), self._limit(new, data)[0]
        if new_limit == old_limit:
            return _evolve(d, state=dst.name)
        cal = self.calendars.get(d.calendar)
        total, original_due = retimed_total(d.total, d.started_at, old_limit, new_limit, cal)
        due = cal.add(d.run_since, total - d.consumed) if d.run_since is not None else d.due_at
        return _evolve(d, state=dst.name, duration=str(new_limit), total=total, original_due=original_due,
                       due_at=due, next_breach_at=due if not d.breaches else d.next_breach_at)

    def _carry_on(self, w: _Work, d: Deadline, dst: StateDef, actor: Actor) -> None:
        """A running deadline that ``continues_in`` dst keeps running: not stopped, not restarted."""
        nd = self._retag(d, dst, self._data(w))
        if nd is d:
            return  # dst has no timer of that name: it runs on as planned
        nd = _evolve(nd, generation=d.generation + 1)
        w.deadlines[d.id] = nd
        w.cancel.append(d.id)
        if nd.total != d.total:
            w.event("DeadlineRetimed", actor, deadline=d.id, timer=d.timer, state=dst.name,
                    duration=nd.duration, allowed_s=round(nd.total, 3), due_at=nd.due_at.isoformat(),
                    previous_due=d.due_at.isoformat())
        self._plan(w, nd, self._timers.get((dst.name, d.timer)), self.calendars.get(d.calendar))

    def _arrive(self, w: _Work, dst: StateDef, actor: Actor, resumed: set[str]) -> None:
        """Settle the case in ``dst``: the case-level pause clock, then close or start its timers."""
        # Case-level SLA clock: calendar time spent in pausing states is excluded.
        pausing = dst.pauses_sla and not dst.final
        if pausing and w.paused_since is None:
            w.paused_since = w.now
        elif not pausing and w.paused_since is not None:
            w.paused_seconds += (w.now - w.paused_since).total_seconds()
            w.paused_since = None
        w.state = dst.name
        if dst.final:
            w.closed_at = w.now
            w.outcome = dst.outcome
            self._parts.case_closed(w, actor)
            self._orders.case_closed(w, actor)
            w.event("CaseClosed", actor, state=dst.name, outcome=dst.outcome)
        else:
            self._enter(w, dst.name, actor, resumed)

    def _enter(self, w: _Work, state: str, actor: Actor, resumed: set[str]) -> None:
        for tdef, duration in self._entry_timers[state]:
            if tdef.name not in resumed:
                self._start(w, state, tdef, duration, actor)

    def _start(self, w: _Work, state: str, tdef: TimerDef, duration: str, actor: Actor) -> None:
        # The holder's own calendar if it has one derived from the timer's (a 7x24 desk, a Saturday
        # rota); the deadline keeps the resolved name, so later firings and explanations use it too.
        limit, cal_name = self._limit(tdef, self._data(w))
        if limit is not tdef.duration:
            duration = str(limit)
        cal = self.calendars.resolve(cal_name, w.holder)
        now = w.now
        w.seq += 1
        did = f"{tdef.name}.{w.seq}"
        started = {"deadline": did, "timer": tdef.name, "duration": duration, "calendar": cal.name}
        if tdef.scheduled:
            due = self._period_due(w, tdef, cal)
            total = cal.elapsed(now, due)
            started["period"] = self._period_label(tdef, due, cal)
        else:
            due, total = limit.span(now, cal)
        d = Deadline(did, tdef.name, state, cal.name, duration, now, due, due, total, run_since=now,
                     next_breach_at=due)
        w.deadlines[did] = d
        started["due_at"] = due.isoformat()
        w.events.append(Event("DeadlineStarted", now, actor.id, actor.role, started))
        self._plan(w, d, tdef, cal)

    # --- calendar-period deadlines (``due:``, engine/schedules.py) ------------------------------

    def _period_due(self, w: _Work, tdef: TimerDef, cal) -> datetime:
        """The due of the period a new (or resumed) deadline targets: the current one, unless it was
        already met (then the one after the period met last) or leaves less than ``min_allowance``."""
        sched = tdef.duration
        met = ((w.data if w.data is not None else w.case.data).get(PERIODS_MET_KEY) or {}).get(tdef.name)
        not_before = sched.next_period(date.fromisoformat(met)) if met else None
        least = tdef.min_allowance.due(w.now, cal) if tdef.min_allowance is not None else None
        return sched.first_due(w.now, cal, not_before, least)

    @staticmethod
    def _period_label(tdef: TimerDef, due: datetime, cal) -> str:
        sched = tdef.duration
        return sched.label(sched.period_of_due(due, cal), sched.period)

    def _period_met(self, w: _Work, d: Deadline, tdef: TimerDef) -> str:
        """The case left (or re-entered) the deadline's state: the period it did so in is met, and the
        next deadline of the timer targets a later one."""
        sched = tdef.duration
        cal = self.calendars.get(d.calendar)
        start = sched.period_start(w.now.astimezone(cal.tz).date())
        data = w.mutable_data()
        met = dict(data.get(PERIODS_MET_KEY) or {})
        if met.get(tdef.name, "") < start.isoformat():
            met[tdef.name] = start.isoformat()
            data[PERIODS_MET_KEY] = met
        return sched.label(start, sched.period)

    def _warn_points(self, d: Deadline, tdef: TimerDef, cal) -> list[tuple[int, datetime]]:
        """``warn_before`` instants of a running deadline (numbered after the ``warn_at`` fractions)."""
        out = []
        for j, before in enumerate(tdef.warn_before):
            if before.unit == WORKING_DAYS:
                at = working_days_before(d.due_at, int(before.amount), cal)
            elif before.unit == WORKING_HOURS:
                at = cal.add(d.run_since, d.total - float(before.seconds or 0.0) - d.consumed)
            else:
                at = d.due_at - timedelta(seconds=float(before.seconds or 0.0))
            out.append((len(tdef.warn_at) + j, at))
        return out
    @staticmethod
    def _data(w: _Work) -> Mapping[str, Any]:
        return w.data if w.data is not None else w.case.data

    @staticmethod
    def _limit(tdef: TimerDef, data: Mapping[str, Any]) -> tuple[Duration, str]:
        """The length a timer runs for on this case, and its calendar: the case's category limit the timer
        reads (``category_limit``, as recorded at filing), else the timer's own ``duration``."""
        if tdef.category_limit is not None:
            limits = data.get(CATEGORY_LIMITS_KEY)
            raw = limits.get(tdef.category_limit) if isinstance(limits, Mapping) else None
            limit = _parsed(raw, None) if raw is not None else None
            if limit is not None:
                return limit, tdef.working_calendar if limit.is_working_time else "24x7"
        return tdef.duration, tdef.calendar

    def _plan(self, w: _Work, d: Deadline, tdef: TimerDef | None, cal) -> None:
        """Schedule the firings still ahead for a running deadline (its current generation)."""
        if tdef is None or d.run_since is None:
            return
        for i, frac in enumerate(tdef.warn_at):
            if i in d.warned or d.breaches:
                continue
            target = frac * d.total - d.consumed
            if target < 0:
                continue
            at = cal.add(d.run_since, target)
            w.schedule.append(TimerSpec(d.id, WARNING, i, d.generation, at))
        if tdef.warn_before and not d.breaches:
            for i, at in self._warn_points(d, tdef, cal):
                if i not in d.warned and w.now <= at < d.due_at:  # a warning already past is not given
                    w.schedule.append(TimerSpec(d.id, WARNING, i, d.generation, at))
        if d.next_breach_at is not None:
            w.schedule.append(TimerSpec(d.id, BREACH, d.breaches + 1, d.generation, d.next_breach_at))
        self._orders.plan(w, d)

    def _used(self, d: Deadline, now: datetime) -> float:
        if d.run_since is None:
            return d.consumed
        return d.consumed + self.calendars.get(d.calendar).elapsed(d.run_since, now)

    def _pause(self, w: _Work, d: Deadline, actor: Actor) -> None:
        used = self._used(d, w.now)
        nd = _evolve(d, consumed=used, run_since=None, paused_since=w.now, pauses=d.pauses + ((w.now, None),),
                     generation=d.generation + 1)
        w.deadlines[d.id] = nd
        w.cancel.append(d.id)
        w.event("DeadlinePaused", actor, deadline=d.id, timer=d.timer, used_s=round(used, 3),
                left_s=round(d.total - used, 3))

    def _resume(self, w: _Work, d: Deadline, actor: Actor) -> None:
        cal = self.calendars.get(d.calendar)
        left = d.total - d.consumed
        due = cal.add(w.now, left) if left >= 0 else d.due_at
        pauses = d.pauses[:-1] + ((d.pauses[-1][0], w.now),) if d.pauses else d.pauses
        next_breach = due if not d.breaches else self._repeat_from(d, w.now, w.holder)
        tdef = self._timers.get((d.state, d.timer))
        total = d.total
        if tdef is not None and tdef.scheduled:  # back in a period: that period's due (not time left)
            due = next_breach = self._period_due(w, tdef, cal)
            total = d.consumed + cal.elapsed(w.now, due)
            left = total - d.consumed
        nd = _evolve(d, run_since=w.now, paused_since=None, pauses=pauses, due_at=due, total=total,
                     next_breach_at=next_breach, generation=d.generation + 1)
        w.deadlines[d.id] = nd
        w.cancel.append(d.id)
        w.event("DeadlineResumed", actor, deadline=d.id, timer=d.timer, due_at=due.isoformat(),
                left_s=round(left, 3))
        self._plan(w, nd, self._timers.get((d.state, d.timer)), cal)

    def _repeat_calendar(self, d: Deadline, tdef: TimerDef, holder: str | None):
        """Repeats count on the deadline's own (holder-resolved) calendar; a working-time repeat of a
        calendar-time limit (``repeat: 5wd`` on ``7d``) on the timer's working calendar for the holder."""
        limit = _parsed(d.duration, tdef.duration)  # the length this deadline runs for (a category's?)
        if limit.is_working_time or tdef.repeat is None or not tdef.repeat.is_working_time:
            return self.calendars.get(d.calendar)
        return self.calendars.resolve(tdef.repeat_calendar, holder)

    def _repeat_from(self, d: Deadline, at: datetime, holder: str | None) -> datetime | None:
        tdef = self._timers.get((d.state, d.timer))
        if tdef is None or tdef.repeat is None:
            return None
        return tdef.repeat.due(at, self._repeat_calendar(d, tdef, holder))

    def _stop(self, w: _Work, d: Deadline, actor: Actor, reason: str, meets: bool = False) -> None:
        """Stop a deadline; ``meets``: the case moved on to a state that is not final, which meets the
        period of a calendar-period deadline (closing the case meets nothing)."""
        used = self._used(d, w.now)
        del w.deadlines[d.id]
        w.cancel.append(d.id)
        stopped = {"deadline": d.id, "timer": d.timer, "reason": reason,
                   "met": d.breaches == 0 and used <= d.total, "used_s": round(used, 3),
                   "allowed_s": round(d.total, 3), "due_at": d.due_at.isoformat()}
        tdef = self._timers.get((d.state, d.timer)) if meets else None
        if tdef is not None and tdef.scheduled:
            stopped["period_met"] = self._period_met(w, d, tdef)
        w.events.append(Event("DeadlineStopped", w.now, actor.id, actor.role, stopped))

    def _extend(self, w: _Work, actor: Actor, spec: tuple[str, str], payload: Mapping[str, Any]) -> None:
        timer_name, by = spec
        if by.startswith("$data."):
            raw = (w.data if w.data is not None else w.case.data).get(by[6:])
        elif by.startswith("$"):
            raw = payload.get(by[1:])
        else:
            raw = by
        if raw is None:
            return
        amount = Duration.parse(raw)
        granted: float | None = None  # what this extension counts against the cap
        for d in list(w.deadlines.values()):
            if d.timer != timer_name:
                continue
            cal = self.calendars.get(d.calendar)
            extra = extra_seconds(amount, d.due_at, cal)
            granted = nominal_seconds(amount, d.due_at, cal) if granted is None else granted
            total = d.total + extra
            if d.is_running:
                due = cal.add(d.run_since, total - d.consumed)
            else:
                due = d.due_at
            ext = {"at": w.now.isoformat(), "by": str(amount), "added_s": round(extra, 3), "actor": actor.id,
                   "previous_due": d.due_at.isoformat(), "new_due": due.isoformat()}
            nd = _evolve(d, total=total, due_at=due, extensions=d.extensions + (MappingProxyType(ext),),
                         next_breach_at=due if not d.breaches else d.next_breach_at,
                         generation=d.generation + 1)
            w.deadlines[d.id] = nd
            w.cancel.append(d.id)
            w.event("DeadlineExtended", actor, deadline=d.id, timer=d.timer, by=str(amount),
                    previous_due=d.due_at.isoformat(), due_at=due.isoformat())
            self._plan(w, nd, self._timers.get((d.state, d.timer)), cal)
        if granted is not None:  # what ``extension_within_limits`` counts
            data = w.mutable_data()
            data[EXTENSIONS_APPROVED_KEY] = int(data.get(EXTENSIONS_APPROVED_KEY) or 0) + 1
            data[EXTENSION_TOTAL_KEY] = round(float(data.get(EXTENSION_TOTAL_KEY) or 0.0) + granted, 3)

    def _supervise(self, w: _Work, actor: Actor, reason: str,
                   payload: Mapping[str, Any] | None = None) -> None:
        if not w.supervised:
            w.supervised = True
            w.event("CaseSupervised", actor, reason=reason)
            w.notes.append(self._notification("supervised", w.case.number, w.holder, {"reason": reason},
                                              reason=reason))
        if payload is not None:  # an action: a supervision order where the workflow has levels
            self._orders.issue(w, actor, payload)

    def _escalate(self, w: _Work, actor: Actor, reason: str) -> None:
        ladder = self.definition.escalation
        if w.level >= ladder.top:
            level = ladder.levels[ladder.top]
            w.event("EscalationAlertRaised", actor, level=level, reason=reason)
            w.notes.append(self._notification(
                "alert", w.case.number, w.holder, {"level": level, "reason": reason},
                level=level, level_label=self._level_label(level), reason=reason))
            return
        frm = ladder.levels[w.level]
        w.level += 1
        to = ladder.levels[w.level]
        w.escalated_to = to
        w.event("CaseEscalated", actor, from_level=frm, to_level=to, level=w.level, reason=reason)
        w.notes.append(self._notification(
            "escalated", w.case.number, w.holder, {"from_level": frm, "to_level": to, "reason": reason},
            level=to, level_label=self._level_label(to), from_level=frm, reason=reason))

    def _deescalate(self, w: _Work, actor: Actor, reason: str) -> None:
        """Back down to the first level of the ladder (``deescalate: true`` on an action): the units above
        no longer work the case (their worklists follow the level), recorded as ``CaseDeescalated``."""
        if w.level <= 0:
            return
        levels = self.definition.escalation.levels
        frm = levels[w.level]
        w.level = 0
        data = w.mutable_data()
        data.pop(ESCALATION_UNITS, None)
        w.event("CaseDeescalated", actor, from_level=frm, to_level=levels[0], level=0, reason=reason)

    # --- notifications: texts and recipients come from the definition -----------------------

    def _notification(self, kind: str, number: str, unit: str | None, data: Mapping[str, Any],
                      holder: tuple[str, ...] = (), notify: tuple[str, ...] = (), /,
                      **values: Any) -> Notification:
        """One notification of ``kind``; ``values`` fill the message's placeholders (``number`` too)."""
        message, to = self._notices[kind]
        return Notification(kind, number, _recipients(to, holder, notify), unit,
                            message.format(number=number, **values), data)

    def _level_label(self, level: str) -> str:
        labels = self.definition.escalation.labels
        return labels[level].zh if level in labels else level


def _recipients(to: tuple[str, ...], holder: tuple[str, ...], notify: tuple[str, ...]) -> tuple[str, ...]:
    """The roles ``to`` names, ``$holder`` and ``$notify`` standing for the roles given for them."""
    if len(to) == 1:  # the usual case, and every default: the tuple itself, as before
        return holder if to[0] == HOLDER else notify if to[0] == BREACH_NOTIFY else to
    out: list[str] = []
    for r in to:
        out.extend(holder if r == HOLDER else notify if r == BREACH_NOTIFY else (r,))
    return tuple(dict.fromkeys(out))
