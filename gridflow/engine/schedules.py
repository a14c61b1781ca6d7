"""Deadlines due at a calendar instant, not after a length: a period's end or a fixed day of the month.

A timer written ``due: {period: calendar_month, at: last_working_day}`` is due at close of business of
the last working day of a calendar month (local time, on the timer's calendar, so 调休 and holidays
count); ``due: {day_of_month: 17, roll: next_working_day}`` at close of business of the 17th, or of the
next working day when the 17th is a day off. Such a deadline targets one **period** (a month, a half
month): the obligation is one per period, not a rolling length. Pure date arithmetic; the engine decides
which period a deadline targets (see ``Engine._start``).
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

#: Periods a schedule counts in.
PERIODS = ("calendar_month", "half_month", "calendar_quarter")
#: Where in a period its deadline falls.
AT = ("last_working_day", "last_day")
#: What a fixed day of the month does when it is a day off.
ROLLS = ("next_working_day", "previous_working_day", "none")
SCHEDULE = "schedule"  # the ``unit`` of a schedule, beside the units of durations
_MAX_SCAN = 400  # days a roll may look for a working day before giving up


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a calendar-period deadline is due. ``period``: the period each deadline targets; ``at``: the
    period's last working day (or last day); ``day_of_month``: a fixed day instead, moved by ``roll``."""

    period: str = "calendar_month"
    at: str = "last_working_day"
    day_of_month: int | None = None
    roll: str = "next_working_day"

    unit = SCHEDULE
    seconds = None
    is_working_time = True  # counted on the timer's own (working) calendar

    @classmethod
    def parse(cls, raw: Any) -> "Schedule":
        if not isinstance(raw, dict):
            raise ScheduleError("due must be a mapping such as {period: calendar_month, at: last_working_day}"
                                " or {day_of_month: 17, roll: next_working_day}")
        unknown = set(raw) - {"period", "at", "day_of_month", "roll"}
        if unknown:
            raise ScheduleError(f"unknown key(s) in due: {', '.join(sorted(map(str, unknown)))} "
                                "(allowed: at, day_of_month, period, roll)")
        period = raw.get("period", "calendar_month")
        if period not in PERIODS:
            raise ScheduleError(f"due period must be one of {', '.join(PERIODS)}, got {period!r}")
        day = raw.get("day_of_month")
        if day is not None:
            if "at" in raw:
                raise ScheduleError("due has either 'at' (a period's end) or 'day_of_month', not both")
            if period != "calendar_month":
                raise ScheduleError("day_of_month counts in calendar months: leave 'period' out")
            if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
                raise ScheduleError(f"day_of_month must be a whole number from 1 to 31, got {day!r}")
            roll = raw.get("roll", "next_working_day")
            if roll not in ROLLS:
                raise ScheduleError(f"roll must be one of {', '.join(ROLLS)}, got {roll!r}")
            return cls(period, "last_working_day", day, roll)
        if "roll" in raw:
            raise ScheduleError("roll goes with day_of_month")
        at = raw.get("at", "last_working_day")
        if at not in AT:
            raise ScheduleError(f"due at must be one of {', '.join(AT)}, got {at!r}")
        return cls(period, at)

    def __str__(self) -> str:
        if self.day_of_month is not None:
            return f"day {self.day_of_month} of the month ({self.roll})"
        return f"{self.period} ({self.at})"

    # --- periods ----------------------------------------------------------------------------------

    def period_start(self, d: date) -> date:
        """The first day of the period ``d`` lies in."""
        if self.period == "half_month":
            return d.replace(day=1 if d.day <= 15 else 16)
        if self.period == "calendar_quarter":
            return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
        return d.replace(day=1)

    def period_end(self, start: date) -> date:
        """The last day of the period starting on ``start``."""
        return self.next_period(start) - timedelta(days=1)

    def next_period(self, start: date) -> date:
        if self.period == "half_month" and start.day == 1:
            return start.replace(day=16)
        months = 3 if self.period == "calendar_quarter" else 1
        y, m = divmod(start.month - 1 + months, 12)
        return date(start.year + y, m + 1, 1)

    @staticmethod
    def label(start: date, period: str = "calendar_month") -> str:
        """How a period is named in history and statistics: ``2026-02``, ``2026-02-16`` (a second half),
        ``2026-Q1``."""
        if period == "calendar_quarter":
            return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        if period == "half_month" and start.day != 1:
            return start.isoformat()
        return start.strftime("%Y-%m")

    def period_of_due(self, due: datetime, calendar) -> date:
        """The period a deadline due at ``due`` targets (the instant just before it, so a due at local
        midnight belongs to the day that ends there)."""
        return self.period_start((due - timedelta(microseconds=1)).astimezone(calendar.tz).date())

    # --- due instants -----------------------------------------------------------------------------

    def due_in(self, start: date, calendar) -> datetime:
        """The due instant of the period starting on ``start``, on ``calendar``."""
        if self.day_of_month is not None:
            last = monthrange(start.year, start.month)[1]
            day = start.replace(day=min(self.day_of_month, last))
            if self.roll != "none":
                step = timedelta(days=1 if self.roll == "next_working_day" else -1)
                day = _working(day, step, calendar)
            return _close_of(day, calendar)
        end = self.period_end(start)
        if self.at == "last_day":
            return datetime.combine(end + timedelta(days=1), time(0), calendar.tz)
        return _close_of(_working(end, timedelta(days=-1), calendar), calendar)

    def due(self, start: datetime, calendar) -> datetime:
        """The first due instant after ``start``: the due of the period ``start`` lies in, or the next
        one's once it has passed (what a repeat after a breach counts with)."""
        return self.first_due(start, calendar)

    def span(self, start: datetime, calendar) -> tuple[datetime, float]:
        due = self.due(start, calendar)
        return due, calendar.elapsed(start, due)

    def first_due(self, now: datetime, calendar, not_before: date | None = None,
                  at_least: datetime | None = None) -> datetime:
        """The due of the first period from ``now``'s on (and from ``not_before``'s, when later) whose
        due is after ``now`` and not before ``at_least``."""
        p = self.period_start(now.astimezone(calendar.tz).date())
        if not_before is not None and not_before > p:
            p = self.period_start(not_before)
        floor = now if at_least is None or at_least < now else at_least
        for _ in range(_MAX_SCAN):
            due = self.due_in(p, calendar)
            if due > now and due >= floor:
                return due
            p = self.next_period(p)
        raise ScheduleError(f"no due of {self} found in {_MAX_SCAN} periods after {now.isoformat()}")


def _working(day: date, step: timedelta, calendar) -> date:
    for _ in range(_MAX_SCAN):
        if calendar.is_working_day(day):
            return day
        day += step
    raise ScheduleError(f"calendar {calendar.name!r} has no working day within {_MAX_SCAN} days of {day}")


def _close_of(day: date, calendar) -> datetime:
    """Close of business of working day ``day`` (the end of its last working period)."""
    start = datetime.combine(day, time(0), calendar.tz)
    close = calendar.add_working_days(start, 0)
    return close if close > start else start + timedelta(days=1)  # a 24x7 calendar: the day's end


def working_days_before(due: datetime, days: int, calendar) -> datetime:
    """Close of business of the ``days``-th working day before the day ``due`` falls on (``warn_before:
    3wd`` on a deadline due at close of business on Wednesday warns at close of business the Friday
    before, when the week has five working days)."""
    day = due.astimezone(calendar.tz).date()
    for _ in range(days):
        day = _working(day - timedelta(days=1), timedelta(days=-1), calendar)
    return _close_of(day, calendar)
