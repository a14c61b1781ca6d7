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
had left when the case comes back; leaving for any other state stops it —
unless the timer ``continues_in`` that state: a handling limit that starts at
dispatch keeps running through signing for and contacting the requester, so a
slow 签收 buys no handling time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .durations import Duration
from .schedules import Schedule  # noqa: F401 (a timer's duration may be a Schedule)
from .roles import KNOWN_ROLES, ROLE_NAMES, SYSTEM_ROLE  # noqa: F401 (KNOWN_ROLES, SYSTEM_ROLE re-exported)

FIELD_TYPES = frozenset(
    {"string", "text", "integer", "number", "boolean", "datetime", "duration", "choice", "unit", "units",
     "case"}
)
OUTCOMES = frozenset({"resolved", "rejected", "merged", "cancelled", "backlogged", "transferred"})
#: ``assign: origin`` hands the case back to the unit it was reported in.
ASSIGN_ORIGIN = "origin"
#: ``assign: dispatcher`` hands the case back to the unit that last dispatched it (the engine records it
#: in case data under :data:`DISPATCHER_KEY` whenever a unit-assigning action is taken).
ASSIGN_DISPATCHER = "dispatcher"
DISPATCHER_KEY = "dispatcher_unit"
#: The filed category's limits (limit name -> duration text), recorded in the case data by the intake and
#: read by timers with ``category_limit`` (see :mod:`.categories`).
CATEGORY_LIMITS_KEY = "category_limits"
#: Who returned the case last (退单), for the street's review and 不当退单.
RETURNED_BY_KEY = "returned_by"
#: What the engine keeps about approved extensions, for ``extension_within_limits``.
EXTENSIONS_APPROVED_KEY = "extensions_approved"
EXTENSION_TOTAL_KEY = "extension_total_s"
#: The reason of an approved extension as told to the requester (the resident).
EXTENSION_REASON_KEY = "extension_reason_for_requester"
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
#: The street's decision on a returned case: ``upheld`` the original dispatch (不当退单), or ``accepted``.
RETURN_VERDICTS = frozenset({"upheld", "accepted"})
#: How a repeating timer catches up after downtime.
MISFIRE_POLICIES = frozenset({"coalesce", "fire_all"})
#: What a route's ``when`` may compare with (besides plain equality / one of a list).
ROUTE_OPERATORS = frozenset({"eq", "ne", "in", "gte", "gt", "lte", "lt"})
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
    duration: Duration  # or a Schedule (``due:``): its ``unit`` is "schedule"
    calendar: str
    warn_at: tuple[float, ...] = ()
    on_breach: BreachPolicy = BreachPolicy()
    repeat: Duration | None = None
    purpose: str = ""
    #: States into which the running deadline carries on (not stopped, not restarted) when the case moves.
    continues_in: tuple[str, ...] = ()
    #: ``coalesce``: a repeat whose instant already passed is skipped (one breach, ``missed`` counts them).
    misfire: str = "coalesce"
    #: The calendar repeats count on: the timer's own working calendar when the repeat is in working time
    #: (``repeat: 5wd`` on a ``7d`` limit means five working days), else 24x7.
    repeat_calendar: str = "24x7"
    #: Warnings this long before the due (``warn_before: 3wd``), after the ``warn_at`` fractions.
    warn_before: tuple[Duration, ...] = ()
    #: A calendar-period deadline (``due:``) leaving less than this targets the next period.
    min_allowance: Duration | None = None

    @property
    def scheduled(self) -> bool:
        """Due at a calendar instant (``due:``, a :class:`~gridflow.engine.schedules.Schedule`)."""
        return self.duration.unit == "schedule"

    @property
    def warnings(self) -> int:
        return len(self.warn_at) + len(self.warn_before)
    #: ``category_limit: handle``: the case's category limit of that name (recorded in the case data at
    #: filing) replaces ``duration``; a category without it runs on ``duration``.
    category_limit: str | None = None
    #: The working calendar the timer names (``calendar`` is 24x7 for a calendar-time ``duration``): a
    #: category limit in working time counts on it.
    working_calendar: str = "cn"


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
    """``when: {field: value}`` sends the action to ``dest`` instead of its default ``to``.

    ``field`` names a payload field, or ``data.<key>`` the case data as it stood before the action;
    ``op`` is ``in`` (one of ``values``) or a comparison with ``values[0]`` (``gte: 1``).
    """

    field: str
    values: tuple[Any, ...]
    dest: str
    op: str = "in"
    #: ``stay: true``: the action is recorded and the case stays where it is, timers untouched.
    stay: bool = False
    #: ``{in: $data.key}``: the values are the case data's list under ``key`` (as it stood before).
    values_from: str | None = None

    @property
    def data_key(self) -> str | None:
        return self.field[5:] if self.field.startswith("data.") else None

    def holds(self, payload: Mapping[str, Any] | None, data: Mapping[str, Any] | None) -> bool:
        key = self.data_key
        value = (data or {}).get(key) if key is not None else (payload or {}).get(self.field)
        op = self.op
        values = self.values
        if self.values_from is not None:
            listed = (data or {}).get(self.values_from)
            values = tuple(listed) if isinstance(listed, (list, tuple)) else ()
        if op in ("in", "eq"):
            return value in values
        if op == "ne":
            return value not in values
        target = self.values[0]
        if value is None:
            value = 0 if isinstance(target, (int, float)) else None
        try:
            return bool({"gte": value >= target, "gt": value > target,
                         "lte": value <= target, "lt": value < target}[op])
        except TypeError:
            return False


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
    count: tuple[str, ...] = ()  # integer case-data counters this action increments
    return_verdict: str | None = None  # "upheld" / "accepted": the street's decision on a returned case
    deescalate: bool = False  # an escalated case comes back down to the first level (CaseDeescalated)

    @property
    def internal(self) -> bool:
        return self.dest is None and not self.routes

    @property
    def destinations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([r.dest for r in self.routes if not r.stay]
                                   + ([self.dest] if self.dest else [])))


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
class ExtensionLimits:
    """How much more time a case may be given: at most ``max_count`` approved extensions adding at most
    ``max_total`` altogether (None: no cap)."""

    max_count: int | None = None
    max_total: Duration | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    extensions: ExtensionLimits = ExtensionLimits()


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
    limits: Limits = Limits()
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

