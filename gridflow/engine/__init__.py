"""The pure core of gridflow: definitions, state machines, clocks, calendars, deadlines, escalation.

Nothing in this package performs I/O beyond reading definition and calendar
files on request; nothing reads the wall clock except ``SystemClock``.
"""

from .calendar import AlwaysCalendar, CalendarRegistry, WorkingCalendar, default_registry, load_overrides
from .case import Actor, CaseSnapshot, Deadline, Decision, Event, Notification, TimerSpec
from .clock import Clock, ManualClock, ScaledClock, SystemClock
from .definition import WorkflowDefinition
from .diagram import to_mermaid
from .durations import Duration
from .engine import Engine
from .errors import (
    ActionNotAllowed, CaseNotFound, DefinitionError, GridflowError, GuardFailed, PayloadInvalid,
    RoleNotAllowed, UnknownAction, VersionConflict,
)
from .explanation import DeadlineExplanation
from .guards import GuardRegistry, default_guards
from .loader import build, load_file, load_text

__all__ = [
    "ActionNotAllowed", "Actor", "AlwaysCalendar", "CalendarRegistry", "CaseNotFound", "CaseSnapshot",
    "Clock", "Deadline", "DeadlineExplanation", "Decision", "DefinitionError", "Duration", "Engine", "Event",
    "GridflowError", "GuardFailed", "GuardRegistry", "ManualClock", "Notification", "PayloadInvalid",
    "RoleNotAllowed", "ScaledClock", "SystemClock", "TimerSpec", "UnknownAction", "VersionConflict",
    "WorkflowDefinition", "WorkingCalendar", "build", "default_guards", "default_registry", "load_file",
    "load_overrides", "load_text", "to_mermaid",
]
