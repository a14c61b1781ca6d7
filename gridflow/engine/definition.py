"""Workflow definitions: the declarative lifecycle as frozen data.

States are flat, each tagged with the ``stage`` it belongs to (report, triage,
response, feedback, review). We chose flat states over ``transitions``'
hierarchical machine because stage membership is only ever read (worklists,
statistics, diagrams), never used for transition resolution, and flat machines
are several times cheaper per trigger; one compiled machine serves every case
of a workflow version.

Timers hang on states. A timer starts when the case enters its state (an
action with an explicit ``to``, even the same state, re-enters), pauses while
the case sits in a state with ``pauses_sla: true`` and resumes with the time it
had left when the case comes back; leaving for any other state stops it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .durations import Duration

SYSTEM_ROLE = "system"
KNOWN_ROLES = frozenset(
    {
        "grid_worker", "resident", "community_dispatcher", "street_dispatcher",
        "district_dispatcher", "department_handler", "supervisor", "admin", "hotline_operator",
        "mediator", "disaster_officer", SYSTEM_ROLE,
    }
)
FIELD_TYPES = frozenset(
    {"string", "text", "integer", "number", "boolean", "datetime", "duration", "choice", "unit", "case"}
)
OUTCOMES = frozenset({"resolved", "rejected", "merged", "cancelled", "backlogged", "transferred"})


@dataclass(frozen=True, slots=True)
class Label:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


#: How each known role is called, for diagrams and messages (DOMAIN.md, "Roles").
ROLE_LABELS: Mapping[str, Label] = MappingProxyType({
    "grid_worker": Label("网格员", "grid worker"),
    "resident": Label("居民", "resident"),
    "community_dispatcher": Label("社区", "community dispatcher"),
    "street_dispatcher": Label("街道", "street dispatcher"),
    "district_dispatcher": Label("区县", "district dispatcher"),
    "department_handler": Label("部门", "department handler"),
    "supervisor": Label("督办", "supervisor"),
    "admin": Label("管理员", "admin"),
    "hotline_operator": Label("12345话务员", "hotline operator"),
    "mediator": Label("人民调解员", "mediator"),
    "disaster_officer": Label("灾害信息员", "disaster information officer"),
    SYSTEM_ROLE: Label("系统", "system"),
})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str
    required: bool = False
    choices: tuple[str, ...] = ()
    label: Label | None = None
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class BreachPolicy:
    escalate: bool = False
    supervise: bool = False
    action: str | None = None
    notify: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TimerDef:
    name: str
    label: Label
    duration: Duration
    calendar: str
    warn_at: tuple[float, ...] = ()
    on_breach: BreachPolicy = BreachPolicy()
    repeat: Duration | None = None
    purpose: str = ""


@dataclass(frozen=True, slots=True)
class StateDef:
    name: str
    label: Label
    stage: str
    final: bool = False
    pauses_sla: bool = False
    holder_roles: tuple[str, ...] = ()
    timers: tuple[TimerDef, ...] = ()
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """``when: {field: value}`` sends the action to ``dest`` instead of its default ``to``."""

    field: str
    values: tuple[Any, ...]
    dest: str


@dataclass(frozen=True, slots=True)
class ActionDef:
    name: str
    label: Label
    sources: tuple[str, ...]
    dest: str | None
    roles: tuple[str, ...]
    guards: tuple[str, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    assign: str | None = None
    sets: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    clears: tuple[str, ...] = ()
    extend: tuple[str, str] | None = None  # (timer name, payload field holding the duration)
    escalate: bool = False
    supervise: bool = False
    routes: tuple["Route", ...] = ()

    @property
    def internal(self) -> bool:
        return self.dest is None and not self.routes

    @property
    def destinations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([r.dest for r in self.routes] + ([self.dest] if self.dest else [])))

    def route(self, payload: Mapping[str, Any]) -> str | None:
        """The destination for this payload: the first matching route, else ``to``."""
        for r in self.routes:
            if payload.get(r.field) in r.values:
                return r.dest
        return self.dest


@dataclass(frozen=True, slots=True)
class EscalationLadder:
    levels: tuple[str, ...]
    labels: Mapping[str, Label] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def top(self) -> int:
        return len(self.levels) - 1


# weakref_slot: the engine caches one compiled machine per definition for as long as it lives.
@dataclass(frozen=True, slots=True, weakref_slot=True)
class WorkflowDefinition:
    name: str
    version: int
    label: Label
    initial: str
    states: Mapping[str, StateDef]
    actions: Mapping[str, ActionDef]
    stages: Mapping[str, Label]
    escalation: EscalationLadder
    roles: tuple[str, ...]
    calendar: str = "cn"
    description: str = ""
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def final_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states.values() if s.final)

    def actions_from(self, state: str) -> tuple[ActionDef, ...]:
        return tuple(a for a in self.actions.values() if state in a.sources)

    def timer(self, state: str, name: str) -> TimerDef | None:
        for t in self.states[state].timers:
            if t.name == name:
                return t
        return None

    def timers_named(self, name: str) -> tuple[tuple[str, TimerDef], ...]:
        return tuple((s.name, t) for s in self.states.values() for t in s.timers if t.name == name)
