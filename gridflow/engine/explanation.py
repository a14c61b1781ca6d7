"""Why a case is (or is not) overdue, deadline by deadline: what ``Engine.explain`` answers.

Typed for code that reasons about it; ``as_dict()`` is the JSON shape the API and the CLI show,
kept key for key as it has always been (``calendar_estimated`` and ``calendar_estimated_years`` added).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping

from .case import Deadline
from .definition import Label


@dataclass(frozen=True, slots=True)
class Pause:
    start: datetime
    end: datetime | None  # None: still paused

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat() if self.end else None}


@dataclass(frozen=True, slots=True)
class DeadlineExplanation:
    deadline: str
    timer: str
    label: Label
    state: str
    status: str  # running or paused
    calendar: Mapping[str, Any]  # the calendar's own description
    duration: str
    started_at: datetime
    original_due: datetime
    current_due: datetime
    pauses: tuple[Pause, ...]
    extensions: tuple[Mapping[str, Any], ...]
    allowed_s: float
    used_s: float
    left_s: float
    overdue: bool
    breaches: int
    warnings_fired: int
    light: str  # green, yellow or red
    #: years from its start to its due date whose days off the calendar only estimates (no official
    #: 放假调休 arrangement known, no override file giving one): the due date may be off by days
    calendar_estimated_years: tuple[int, ...] = ()

    @property
    def calendar_estimated(self) -> bool:
        return bool(self.calendar_estimated_years)

    @classmethod
    def of(cls, d: Deadline, label: Label, calendar: Mapping[str, Any], used: float,
           light: str, estimated_years: tuple[int, ...] = ()) -> "DeadlineExplanation":
        """``used``: working seconds used so far, now; the amounts are rounded to the millisecond."""
        return cls(
            deadline=d.id, timer=d.timer, label=label, state=d.state, status=d.status,
            calendar=MappingProxyType(dict(calendar)), duration=d.duration, started_at=d.started_at,
            original_due=d.original_due, current_due=d.due_at,
            pauses=tuple(Pause(a, b) for a, b in d.pauses), extensions=d.extensions,
            allowed_s=round(d.total, 3), used_s=round(used, 3), left_s=round(d.total - used, 3),
            overdue=used >= d.total, breaches=d.breaches, warnings_fired=len(d.warned), light=light,
            calendar_estimated_years=tuple(estimated_years),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "deadline": self.deadline, "timer": self.timer, "label": self.label.zh, "label_en": self.label.en,
            "state": self.state, "status": self.status, "calendar": dict(self.calendar),
            "duration": self.duration, "started_at": self.started_at.isoformat(),
            "original_due": self.original_due.isoformat(), "current_due": self.current_due.isoformat(),
            "pauses": [p.as_dict() for p in self.pauses], "extensions": [dict(e) for e in self.extensions],
            "allowed_s": self.allowed_s, "used_s": self.used_s, "left_s": self.left_s,
            "overdue": self.overdue, "breaches": self.breaches, "warnings_fired": self.warnings_fired,
            "light": self.light, "calendar_estimated": self.calendar_estimated,
            "calendar_estimated_years": list(self.calendar_estimated_years),
        }
