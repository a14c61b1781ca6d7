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
    {"string", "text", "integer", "number", "boolean", "datetime", "duration", "choice", "unit", "units",
     "case"}
)
OUTCOMES = frozenset({"resolved", "rejected", "merged", "cancelled", "backlogged", "transferred"})
#: ``assign: origin`` hands the case back to the unit it was reported in.
ASSIGN_ORIGIN = "origin"
#: What an action is, for statistics and for the engine's case-level programs (orders, co-handling parts).
ACTION_KINDS = frozenset({
    "report", "triage_local", "merge", "reject", "dispatch", "refer_up", "sign_for", "contact", "return",
    "recall", "reassign", "take_over", "extension_request", "extension_approval", "extension_denial",
    "suspension_request", "suspension_approval", "suspension_denial", "resume", "reply", "rate",
    "rate_default", "review_pass", "review_fail", "rework", "close", "supervise", "supervision_reply",
    "co_sign_for", "co_answer", "co_close", "consult", "park", "other",
})
#: ``Deadline.state`` of a case-level deadline: bound to no state, it survives state moves, is not
#: paused by a pausing state (挂起) and stops when the case closes (supervision orders, co-handling parts).
CASE_LEVEL = "*case"


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
    levels: tuple[str, ...]
    labels: Mapping[str, Label] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def top(self) -> int:
        return len(self.levels) - 1


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
    "order_issued": frozenset({"number", "order", "level", "level_label", "unit", "due"}),
    "reminded": frozenset({"number", "timer", "timer_en", "unit"}),
    "criticised": frozenset({"number", "timer", "timer_en", "unit"}),
    "co_handling": frozenset({"number", "unit", "due"}),
})
NOTIFICATION_TOKENS: Mapping[str, frozenset[str]] = MappingProxyType({
    "warned": frozenset({HOLDER}),
    "breached": frozenset({BREACH_NOTIFY, HOLDER}),
    "assigned": frozenset({HOLDER}),
    "supervised": frozenset(),
    "alert": frozenset(),
    "escalated": frozenset(),
    "order_issued": frozenset({HOLDER}),
    "reminded": frozenset({HOLDER}),
    "criticised": frozenset({HOLDER}),
    "co_handling": frozenset({HOLDER}),
})

#: What a workflow whose ``notifications:`` says nothing (about a kind) gets.
DEFAULT_NOTIFICATIONS: Mapping[str, NotificationDef] = MappingProxyType({
    "warned": NotificationDef("{number}: {timer} 即将到期 ({due})", (HOLDER,)),
    "breached": NotificationDef("{number}: {timer} 已超期", (BREACH_NOTIFY,)),
    "assigned": NotificationDef("{number}: 新案件 {action}", (HOLDER,)),
    "supervised": NotificationDef("{number}: 已列入督办", ("supervisor",)),
    "alert": NotificationDef("{number}: 已在最高层级({level})，无法再升级，请督办", ("supervisor",)),
    "escalated": NotificationDef("{number}: 升级至{level_label}", ("supervisor",)),
    "order_issued": NotificationDef("{number}: {level_label}督办单 {order}，请于 {due} 前答复", (HOLDER,)),
    "reminded": NotificationDef("{number}: {timer} 已超期，催办", (HOLDER,)),
    "criticised": NotificationDef("{number}: {timer} 催办后仍超期，通报批评", (HOLDER, "supervisor")),
    "co_handling": NotificationDef("{number}: 新协办任务，请于 {due} 前答复", (HOLDER,)),
})


@dataclass(frozen=True, slots=True)
class SupervisionLevel:
    """One level of 督办 (一般督办, 重点督办) and how long the holder has to answer its order."""

    name: str
    label: Label
    reply_within: Duration


#: 催办 the next working day after a breach; 通报批评 when still overdue 5 working days after it.
DEFAULT_REMINDER_AFTER = Duration.parse("1wd")
DEFAULT_NOTICE_AFTER = Duration.parse("5wd")


@dataclass(frozen=True, slots=True)
class SupervisionDef:
    """The ``supervision:`` section. Without ``levels`` a ``supervise`` action only flags the case;
    reminders and notices follow ``reminder_after``/``notice_after`` in every workflow (one rule)."""

    levels: Mapping[str, SupervisionLevel] = field(default_factory=lambda: MappingProxyType({}))
    reminder_after: Duration = DEFAULT_REMINDER_AFTER
    notice_after: Duration = DEFAULT_NOTICE_AFTER
    on_overdue: BreachPolicy = BreachPolicy(escalate=True)
    calendar: str | None = None  # None: the workflow's calendar


@dataclass(frozen=True, slots=True)
class CoHandlingDef:
    """The ``co_handling:`` section (主办/协办): a co-handling unit's limits, both counted from dispatch."""

    sign_within: Duration
    answer_within: Duration
    on_breach: BreachPolicy = BreachPolicy()
    calendar: str | None = None


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
    supervision: SupervisionDef = SupervisionDef()
    co_handling: CoHandlingDef | None = None
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
        """A state's timer; None for a case-level deadline's (the engine's ``timer_def`` knows those)."""
        st = self.states.get(state)
        for t in st.timers if st is not None else ():
            if t.name == name:
                return t
        return None

