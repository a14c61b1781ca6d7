"""Shared pieces for the engine's unit tests: real calendars, actors, and a tiny runner.

The runner does for a test what the service does for a case: it keeps the
snapshot, applies each decision (voids the timers of cancelled deadlines,
stores the ones scheduled) and fires whatever is due when the clock moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gridflow.engine import (
    Actor, CaseSnapshot, Decision, Engine, Event, ManualClock, TimerSpec, default_registry, load_text,
)

SH = ZoneInfo("Asia/Shanghai")
CALENDARS = default_registry()  # one registry for the whole run: calendars cache their day tables


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A wall-clock time in Shanghai."""
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def local(dt: datetime) -> datetime:
    return dt.astimezone(SH)


# A quiet working week: Monday 2026-03-09 to Friday 2026-03-13, no holiday near it.
MONDAY_9 = at(2026, 3, 9, 9, 0)

REPORTER = Actor("resident-1", "resident", None)
GRID = Actor("grid-1", "grid_worker", "grid-01")
COMMUNITY = Actor("comm-1", "community_dispatcher", "community-1")
STREET = Actor("street-1", "street_dispatcher", "street-1")
DEPT = Actor("dept-1", "department_handler", "housing")
SUPERVISOR = Actor("sup-1", "supervisor", "district-1")


@dataclass
class Runner:
    """Drives one case through an engine the way the service would, recording everything."""

    engine: Engine
    clock: ManualClock
    case: CaseSnapshot | None = None
    pending: dict[str, TimerSpec] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def open(self, actor: Actor = REPORTER, number: str = "C-1", **kwargs) -> Decision:
        decision = self.engine.open(number, actor, self.clock.now(), **kwargs)
        return self.apply(decision)

    def apply(self, decision: Decision) -> Decision:
        self.case = decision.case
        self.decisions.append(decision)
        self.events.extend(decision.events)
        for deadline_id in decision.cancel:
            for key in [k for k, t in self.pending.items() if t.deadline_id == deadline_id]:
                del self.pending[key]
        for t in decision.schedule:
            self.pending[t.key] = t
        return decision

    def act(self, action: str, actor: Actor, payload: dict | None = None) -> Decision:
        return self.apply(self.engine.act(self.case, action, actor, payload, self.clock.now()))

    def fire(self, timer: TimerSpec, now: datetime | None = None) -> Decision:
        self.pending.pop(timer.key, None)
        return self.apply(self.engine.fire(self.case, timer, now or self.clock.now()))

    def due(self) -> list[TimerSpec]:
        now = self.clock.now()
        return sorted((t for t in self.pending.values() if t.due_at <= now), key=lambda t: (t.due_at, t.key))

    def run_due(self) -> list[Decision]:
        fired = []
        while due := self.due():
            fired.append(self.fire(due[0]))
        return fired

    def advance(self, **kwargs: float) -> list[Decision]:
        return self.advance_to(self.clock.now() + timedelta(**kwargs))

    def advance_to(self, when: datetime) -> list[Decision]:
        """Time passes with the runner up: each timer fires at its own instant, in order."""
        fired = []
        while True:
            ahead = [t for t in self.pending.values() if t.due_at <= when]
            if not ahead:
                break
            nxt = min(ahead, key=lambda t: (t.due_at, t.key))
            if nxt.due_at > self.clock.now():
                self.clock.set(nxt.due_at)
            fired.append(self.fire(nxt))
        if when > self.clock.now():
            self.clock.set(when)
        return fired

    def jump_to(self, when: datetime) -> list[Decision]:
        """The runner was down until ``when``: everything that fell due fires at once, late."""
        self.clock.set(when)
        return self.run_due()

    def timer(self, kind: str, deadline_prefix: str = "") -> TimerSpec:
        """The one pending timer of this kind (for deadlines whose id starts with the prefix)."""
        found = [t for t in self.pending.values()
                 if t.kind == kind and t.deadline_id.startswith(deadline_prefix)]
        assert len(found) == 1, found
        return found[0]

    def types(self, since: int = 0) -> list[str]:
        return [e.type for e in self.events[since:]]

    def deadline(self, timer: str):
        found = [d for d in self.case.deadlines if d.timer == timer]
        assert len(found) == 1, self.case.deadlines
        return found[0]


def workflow(text: str, **kwargs):
    """A small definition written inline in a test."""
    return load_text(text, "<test>", calendars=CALENDARS, **kwargs)
