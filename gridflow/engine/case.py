"""What the engine reads (a case snapshot) and what it answers (a decision).

All frozen: the engine never mutates its input, so a refused action leaves
nothing half-changed and the service can commit the decision atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping

RUNNING = "running"
PAUSED = "paused"
WARNING = "warning"
BREACH = "breach"


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    role: str
    unit: str | None = None

    @classmethod
    def system(cls) -> "Actor":
        return cls("system", "system", None)


@dataclass(frozen=True, slots=True)
class Deadline:
    """The SLA clock of one timer while its state is active (running or paused).

    Working time is tracked in seconds of the deadline's calendar: ``total`` is
    what the deadline allows (extensions included) and ``consumed`` what was
    used before the current running segment began at ``run_since``.
    """

    id: str
    timer: str
    state: str
    calendar: str
    duration: str
    started_at: datetime
    original_due: datetime
    due_at: datetime
    total: float
    consumed: float = 0.0
    run_since: datetime | None = None
    paused_since: datetime | None = None
    pauses: tuple[tuple[datetime, datetime | None], ...] = ()
    extensions: tuple[Mapping[str, Any], ...] = ()
    warned: tuple[int, ...] = ()
    breaches: int = 0
    next_breach_at: datetime | None = None
    generation: int = 1

    @property
    def status(self) -> str:
        return RUNNING if self.run_since is not None else PAUSED

    @property
    def is_running(self) -> bool:
        return self.run_since is not None


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """One durable firing the service stores and a runner fires later."""

    deadline_id: str
    kind: str  # "warning" or "breach"
    seq: int  # warning index (0-based) or breach number (1-based)
    generation: int
    due_at: datetime

    @property
    def key(self) -> str:
        return f"{self.deadline_id}/{self.kind}/{self.seq}@{self.generation}"

    @classmethod
    def parse_key(cls, key: str, due_at: datetime) -> "TimerSpec":
        head, generation = key.rsplit("@", 1)
        deadline_id, kind, seq = head.rsplit("/", 2)
        return cls(deadline_id, kind, int(seq), int(generation), due_at)


@dataclass(frozen=True, slots=True)
class CaseSnapshot:
    number: str
    workflow: str
    version: int
    state: str
    opened_at: datetime
    updated_at: datetime
    escalation_level: int = 0
    escalation_top: int = 3
    supervised: bool = False
    holder_unit: str | None = None
    origin_unit: str | None = None
    reporter: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    deadlines: tuple[Deadline, ...] = ()
    deadline_seq: int = 0
    breach_count: int = 0
    sla_paused_seconds: float = 0.0
    paused_since: datetime | None = None
    closed_at: datetime | None = None
    outcome: str | None = None

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    def deadline(self, deadline_id: str) -> Deadline | None:
        for d in self.deadlines:
            if d.id == deadline_id:
                return d
        return None


@dataclass(frozen=True, slots=True)
class Event:
    """A history entry, past tense (``ActionTaken``, ``DeadlineBreached``...)."""

    type: str
    at: datetime
    actor: str
    role: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Notification:
    kind: str  # warned, breached, escalated, alert, assigned, supervised
    case: str
    roles: tuple[str, ...]
    unit: str | None
    message: str
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Decision:
    case: CaseSnapshot
    events: tuple[Event, ...] = ()
    schedule: tuple[TimerSpec, ...] = ()
    cancel: tuple[str, ...] = ()  # deadline ids whose pending timers are void
    notifications: tuple[Notification, ...] = ()
    escalated_to: str | None = None  # ladder level the service must resolve to a unit

    @property
    def changed(self) -> bool:
        return bool(self.events)
