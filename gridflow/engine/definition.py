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
from .roles import KNOWN_ROLES, ROLE_NAMES, SYSTEM_ROLE  # noqa: F401 (KNOWN_ROLES, SYSTEM_ROLE re-exported)

FIELD_TYPES = frozenset(
    {"string", "text", "integer", "number", "boolean", "datetime", "duration", "choice", "unit", "case"}
)
OUTCOMES = frozenset({"resolved", "rejected", "merged", "cancelled", "backlogged", "transferred"})
#: ``assign: origin`` hands the case back to the unit it was reported in.
ASSIGN_ORIGIN = "origin"
#: ``assign: actor`` hands the case to the unit of whoever takes the action (提级办理: the upper unit takes
#: it).
ASSIGN_ACTOR = "actor"

#: What an action is, whatever a workflow calls it: statistics read kinds, never action names.
ACTION_KINDS = frozenset({
    "report", "triage_local", "merge", "reject", "dispatch", "refer_up", "sign_for", "contact", "return",
    "recall", "reassign", "take_over", "extension_request", "extension_approval", "extension_denial",
    "suspension_request", "suspension_approval", "suspension_denial", "resume", "reply", "rate",
    "rate_default", "review_pass", "review_fail", "rework", "close", "supervise", "supervision_reply",
    "co_sign_for", "co_answer", "co_close", "consult", "park", "other",
})


@dataclass(frozen=True, slots=True)
class Label:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


#: How each known role is called, for diagrams and messages.
ROLE_LABELS: Mapping[str, Label] = MappingProxyType({r: Label(zh, en) for r, (zh, en) in ROLE_NAMES.items()})


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
    kind: str = "other"

    @property
    def internal(self) -> bool:
        return self.dest is None and not self.routes

    @property
    def destinations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([r.dest for r in self.routes] + ([self.dest] if self.dest else [])))


@dataclass(frozen=True, slots=True)
class EscalationLadder:
    """The levels a case climbs, and who works it at each level (``handlers``: level -> roles).

    A case escalated to a level is on the worklists of that level's handlers at the unit the service
    routed it to (``escalation_unit``); they have the upper-level actions on it (改派, 提级办理, 重办, 督办).
    """

    levels: tuple[str, ...]
    labels: Mapping[str, Label] = field(default_factory=lambda: MappingProxyType({}))
    handlers: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def top(self) -> int:
        return len(self.levels) - 1

    def handlers_at(self, level: int) -> tuple[str, ...]:
        """The roles working a case escalated to ``level`` (an index into the ladder)."""
        if not 0 <= level < len(self.levels):
            return ()
        return self.handlers.get(self.levels[level], ())


@dataclass(frozen=True, slots=True)
class NotificationDef:
    """What the engine says when it raises one kind of notification, and to whom.

    ``message`` is a template with named placeholders (``{number}``...); ``to`` names roles, or
    ``$holder`` (the roles holding the case in the state concerned) and, for a breach, ``$notify``
    (the roles the timer's ``on_breach: notify`` names; without them no breach notice goes out).
    """

    message: str
    to: tuple[str, ...] = ()


HOLDER = "$holder"
BREACH_NOTIFY = "$notify"

#: Each kind of notification with the placeholders its message may use and the recipient tokens it knows.
NOTIFICATION_PLACEHOLDERS: Mapping[str, frozenset[str]] = MappingProxyType({
    "warned": frozenset({"number", "timer", "timer_en", "due"}),
    "breached": frozenset({"number", "timer", "timer_en", "due"}),
    "assigned": frozenset({"number", "action", "action_en", "unit", "from_unit"}),
    "supervised": frozenset({"number", "reason"}),
    "alert": frozenset({"number", "level", "level_label", "reason"}),
    "escalated": frozenset({"number", "level", "level_label", "from_level", "reason"}),
})
NOTIFICATION_TOKENS: Mapping[str, frozenset[str]] = MappingProxyType({
    "warned": frozenset({HOLDER}),
    "breached": frozenset({BREACH_NOTIFY, HOLDER}),
    "assigned": frozenset({HOLDER}),
    "supervised": frozenset(),
    "alert": frozenset(),
    "escalated": frozenset(),
})

#: What a workflow whose ``notifications:`` says nothing (about a kind) gets.
DEFAULT_NOTIFICATIONS: Mapping[str, NotificationDef] = MappingProxyType({
    "warned": NotificationDef("{number}: {timer} 即将到期 ({due})", (HOLDER,)),
    "breached": NotificationDef("{number}: {timer} 已超期", (BREACH_NOTIFY,)),
    "assigned": NotificationDef("{number}: 新案件 {action}", (HOLDER,)),
    "supervised": NotificationDef("{number}: 已列入督办", ("supervisor",)),
    "alert": NotificationDef("{number}: 已在最高层级({level})，无法再升级，请督办", ("supervisor",)),
    "escalated": NotificationDef("{number}: 升级至{level_label}", ("supervisor",)),
})


@dataclass(frozen=True, slots=True)
class IntakeDef:
    """Who may open a case of this workflow. ``public``: anyone, without credentials (a resident's web
    form, the hotline's public channel); otherwise only callers with credentials."""

    public: bool = False


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
    notifications: Mapping[str, NotificationDef] = field(default_factory=lambda: DEFAULT_NOTIFICATIONS)
    intake: IntakeDef = IntakeDef()
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

