"""A clock an admin can drive: training, demos and acceptance tests of a city's own workflows.

With ``GRIDFLOW_CLOCK=manual`` (``gridflow serve --clock manual``) time stands still until an admin
moves it forward; every timer that falls due on the way fires at once, before the move is answered,
through the same runner (and so the same ``fire_timers``) that fires them in normal operation. On
any other clock the controls do not exist (404): real time is not for moving.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

from ..engine.clock import ManualClock, ScaledClock, ensure_aware, parse_iso_duration
from ..engine.errors import GridflowError, NotFound
from .context import Services
from .timers import FireOutcome

#: The longest single move: a year and a day. Longer is a typo (P1000D) more often than a plan, and
#: would fire a year of timers in one request; move twice if you mean it.
MAX_MOVE = timedelta(days=366)
_MOVES = threading.Lock()  # one move (and its firings) at a time


class ClockNotManual(NotFound):
    code = "clock_not_manual"


class ClockMoveRefused(GridflowError):
    code = "clock_move_refused"
    status = 422


@dataclass(frozen=True)
class ClockState:
    kind: str  # manual, scaled, system
    now: datetime
    adjustable: bool


@dataclass(frozen=True)
class ClockMoved:
    previous: datetime
    now: datetime
    fired: int  # timers fired because of the move
    outcomes: tuple[FireOutcome, ...] = ()


def clock_kind(svc: Services) -> str:
    if isinstance(svc.clock, ManualClock):
        return "manual"
    if isinstance(svc.clock, ScaledClock):
        return "scaled"
    return "system"


def clock_state(svc: Services) -> ClockState:
    kind = clock_kind(svc)
    return ClockState(kind, svc.clock.now(), kind == "manual")


def _manual(svc: Services) -> ManualClock:
    clock = svc.clock
    if not isinstance(clock, ManualClock):
        raise ClockNotManual(f"this server runs on the {clock_kind(svc)} clock, which nobody moves; "
                             "start it with --clock manual (GRIDFLOW_CLOCK=manual) for a clock you can drive")
    return clock


def _target(now: datetime, advance: str | None, to: datetime | None) -> datetime:
    if (advance is None) == (to is None):
        raise ClockMoveRefused("give exactly one of 'advance' (an ISO 8601 duration such as PT4H) "
                               "and 'to' (an ISO datetime)")
    if advance is not None:
        try:
            step = parse_iso_duration(advance)
        except ValueError as exc:
            raise ClockMoveRefused(str(exc), fields={"advance": advance}) from None
        if step < timedelta(0):
            raise ClockMoveRefused(f"advance {advance!r} is negative: the clock never runs backwards",
                                   fields={"advance": advance})
        if step > MAX_MOVE:
            raise ClockMoveRefused(f"advance {advance!r} is more than {MAX_MOVE.days} days in one move",
                                   fields={"advance": advance}, max_days=MAX_MOVE.days)
        return now + step
    try:
        target = ensure_aware(to, "to")
    except ValueError:
        raise ClockMoveRefused("'to' needs a UTC offset (e.g. 2026-03-02T09:00:00+08:00)",
                               fields={"to": "naive"}) from None
    if target < now:
        raise ClockMoveRefused(f"'to' {target.isoformat()} is before the clock's now {now.isoformat()}: "
                               "the clock never runs backwards", fields={"to": target.isoformat()},
                               now=now.isoformat())
    if target - now > MAX_MOVE:
        raise ClockMoveRefused(f"'to' is more than {MAX_MOVE.days} days ahead in one move",
                               fields={"to": target.isoformat()}, max_days=MAX_MOVE.days)
    return target


def move_clock(svc: Services, *, advance: str | None = None, to: datetime | None = None,
               fire_due: Callable[[], Sequence[FireOutcome]] | None = None) -> ClockMoved:
    """Move the manual clock forward by ``advance`` (ISO 8601 duration) or to ``to``, then fire what
    fell due with ``fire_due`` (the running timer runner's ``run_due``) before answering.

    Refused (nothing moved) on another clock, with both or neither of ``advance`` and ``to``, with a
    negative or too long step, or a ``to`` in the past.
    """
    clock = _manual(svc)
    with _MOVES:
        previous = clock.now()
        target = _target(previous, advance, to)
        clock.set(target)
        outcomes = tuple(fire_due()) if fire_due is not None else ()
    return ClockMoved(previous, clock.now(), sum(1 for o in outcomes if o.status == "fired"), outcomes)
