"""The arithmetic of clocks nobody can game: catching up after downtime, extra time, retimed limits.

Pure functions of deadlines, durations and calendars; the engine decides when to call them.
"""

from __future__ import annotations

from datetime import datetime

from .durations import WORKING_DAYS, WORKING_HOURS, Duration

#: A repeat shorter than downtime / this many periods is not worth counting one by one.
_MAX_MISSED = 100_000


def coalesce(repeat: Duration, last_due: datetime, now: datetime, calendar) -> tuple[datetime, int]:
    """The first repeat instant after ``now`` following the firing due at ``last_due``, and how many
    repeat instants between them were skipped (``misfire: coalesce``)."""
    nxt = repeat.due(last_due, calendar)
    missed = 0
    while nxt <= now and missed < _MAX_MISSED:
        missed += 1
        nxt = repeat.due(nxt, calendar)
    return nxt, missed


def extra_seconds(amount: Duration, due_at: datetime, calendar) -> float:
    """The working time (seconds of ``calendar``) an extension of ``amount`` adds to a deadline due at
    ``due_at``: working hours exactly that much; anything else the working time between the current due
    and the same due moved by the amount."""
    if amount.unit == WORKING_HOURS:
        return float(amount.seconds or 0.0)
    if amount.unit == WORKING_DAYS:
        return calendar.working_days_span(due_at, int(amount.amount))[1]
    return calendar.elapsed(due_at, amount.due(due_at, calendar))


def nominal_seconds(amount: Duration, at: datetime, calendar) -> float:
    """How long ``amount`` is, for capping extensions: working hours and calendar time their exact length,
    N working days N whole working days of ``calendar`` (from a close of business at or after ``at``), so
    that 10wd and 5wd add up to 15wd wherever the due time falls in the day."""
    if amount.unit == WORKING_DAYS:
        close = calendar.add_working_days(at, 0)
        return calendar.working_days_span(close, int(amount.amount))[1]
    return float(amount.seconds or 0.0)


def retimed_total(total: float, started_at: datetime, old: Duration, new: Duration,
                  calendar) -> tuple[float, datetime]:
    """A deadline's allowance when its limit changes from ``old`` to ``new`` on the way (a general
    request confirmed complex: 7d becomes 15d), both counted from the original start; extensions
    already granted stay granted. Also the new limit's due as if nothing had paused it."""
    _, old_base = old.span(started_at, calendar)
    new_due, new_base = new.span(started_at, calendar)
    return total - old_base + new_base, new_due
