"""Deadline lengths as written in workflow definitions.

``16wh`` / ``16 working hours`` / ``16工作小时`` count working time on a business
calendar; ``2wd`` / ``2 working days`` / ``2工作日`` count whole working days (the
day of receipt does not count, the deadline is close of business of the Nth
working day after it — see :mod:`gridflow.engine.calendar`); ``4h``, ``30m``,
``3d`` count calendar time, every second of it, whatever the calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

WORKING_HOURS = "working_hours"
WORKING_DAYS = "working_days"
HOURS = "hours"
MINUTES = "minutes"
DAYS = "days"

_UNITS = {
    "wh": WORKING_HOURS, "working hour": WORKING_HOURS, "working hours": WORKING_HOURS,
    "工作小时": WORKING_HOURS, "个工作小时": WORKING_HOURS,
    "wd": WORKING_DAYS, "working day": WORKING_DAYS, "working days": WORKING_DAYS,
    "工作日": WORKING_DAYS, "个工作日": WORKING_DAYS,
    "h": HOURS, "hour": HOURS, "hours": HOURS, "小时": HOURS, "个小时": HOURS,
    "m": MINUTES, "min": MINUTES, "mins": MINUTES, "minute": MINUTES, "minutes": MINUTES, "分钟": MINUTES,
    "d": DAYS, "day": DAYS, "days": DAYS, "天": DAYS, "日": DAYS,
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z\u4e00-\u9fff ]+?)\s*$")
_SECONDS = {HOURS: 3600.0, MINUTES: 60.0, DAYS: 86400.0, WORKING_HOURS: 3600.0}
_SHORT = {WORKING_HOURS: "wh", WORKING_DAYS: "wd", HOURS: "h", MINUTES: "m", DAYS: "d"}


class DurationError(ValueError):
    pass


_PARSED: dict[str, "Duration"] = {}  # durations are few and immutable: each text is parsed once


@dataclass(frozen=True, slots=True)
class Duration:
    amount: float
    unit: str

    @classmethod
    def parse(cls, text: str | int | float) -> "Duration":
        if isinstance(text, str):
            parsed = _PARSED.get(text)
            if parsed is None:
                parsed = cls._parse(text)
                if len(_PARSED) < 1024:
                    _PARSED[text] = parsed
            return parsed
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str | int | float) -> "Duration":
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise DurationError(f"a duration must be text like '16wh', '2wd', '4h' or '30m', got {text!r}")
        if isinstance(text, (int, float)):
            raise DurationError(f"duration {text!r} has no unit: write e.g. '{text}wh' or '{text}h'")
        match = _PATTERN.match(text)
        unit = _UNITS.get(match.group(2).strip().lower()) if match else None
        if not match or unit is None:
            raise DurationError(
                f"cannot parse duration {text!r}: use a number and a unit — wh (working hours), "
                "wd (working days), h, m or d"
            )
        amount = float(match.group(1))
        if amount <= 0:
            raise DurationError(f"duration {text!r} must be positive")
        if unit == WORKING_DAYS and amount != int(amount):
            raise DurationError(f"working days must be whole, got {text!r}")
        return cls(amount, unit)

    @property
    def is_working_time(self) -> bool:
        return self.unit in (WORKING_HOURS, WORKING_DAYS)

    @property
    def seconds(self) -> float | None:
        """The exact length in seconds of working or calendar time; None for working days.

        Rounded to the microsecond, as calendars count, so that a deadline's allowance equals
        the working time between its start and its due. Working days have no fixed length:
        it depends on the time of day and the days off they span.
        """
        if self.unit == WORKING_DAYS:
            return None
        return round(self.amount * _SECONDS[self.unit] * 1_000_000) / 1_000_000

    def __str__(self) -> str:
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        return f"{amount}{_SHORT[self.unit]}"

    def span(self, start: datetime, calendar) -> tuple[datetime, float]:
        """When a deadline of this length started at ``start`` is due, and the working seconds it allows."""
        if self.unit == WORKING_DAYS:
            return calendar.working_days_span(start, int(self.amount))
        return self.due(start, calendar), self.seconds

    def due(self, start: datetime, calendar) -> datetime:
        """The instant this duration after ``start`` ends on ``calendar``.

        Calendar-time units ignore working hours: callers pass the 24x7 calendar for them.
        """
        if self.unit == WORKING_DAYS:
            return calendar.add_working_days(start, int(self.amount))
        if self.unit == WORKING_HOURS:
            return calendar.add(start, self.amount * 3600.0)
        return start + timedelta(seconds=self.amount * _SECONDS[self.unit])
