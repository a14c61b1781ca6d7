"""How the service is doing, told truthfully: the timer backlog, and why health is degraded.

``/healthz`` and the metrics ask :func:`assess_health`. The database answering a
``SELECT 1`` is not enough to say "ok": the timer runner may be failing every
poll, due timers may be piling up, or the database may refuse every write (a
lock held by another process, a full disk). Each of these is a named reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import TimerRow
from ..engine.errors import StoreError
from .context import Services
from .lists import as_utc

#: Every reason health can give, in the order it is reported (also the metric's label values).
REASONS = ("database_unavailable", "database_locked", "writes_refused", "runner_failing", "runner_stopped",
           "timers_overdue")
#: Reasons that mean nothing can be written here: /healthz answers 503 (take this instance out).
CANNOT_WRITE = frozenset({"database_unavailable", "database_locked", "writes_refused", "runner_failing"})
#: How long one write probe's answer stands (health checks and scrapes arriving together probe once).
PROBE_MAX_AGE_S = 2.0


@dataclass(frozen=True)
class TimerBacklog:
    pending: int
    due: int
    oldest_due_at: datetime | None
    lag_s: float


@dataclass(frozen=True)
class Health:
    status: str  # ok, degraded, unavailable
    reasons: tuple[str, ...]
    database: str  # ok, unavailable
    backlog: TimerBacklog | None
    write_error: str | None = None
    #: Years whose 放假调休 arrangement the calendars only estimate, among this year, the next one and
    #: every year a deadline was computed on so far: deadlines there may be off by days. Not a reason
    #: to degrade (the service works); an operator adds the year to the override file.
    calendar_estimated_years: tuple[int, ...] = ()

    @property
    def http_status(self) -> int:
        return 503 if CANNOT_WRITE.intersection(self.reasons) else 200


def timer_backlog(svc: Services) -> TimerBacklog:
    """Pending timers and how far behind the oldest due one is (timer lag, whoever fires them)."""
    now = svc.clock.now()
    with svc.uow(write=False) as uow:
        pending, due, oldest = uow.session.execute(select(
            sa.func.count(), sa.func.sum(sa.case((TimerRow.due_at <= now, 1), else_=0)),
            sa.func.min(TimerRow.due_at))).one()
    oldest_due = as_utc(datetime.fromisoformat(oldest) if isinstance(oldest, str) else oldest)
    lag = max(0.0, (now - oldest_due).total_seconds()) if oldest_due and int(due or 0) else 0.0
    return TimerBacklog(int(pending or 0), int(due or 0), oldest_due, lag)


def _write_reason(error: str) -> str:
    text = error.lower()
    locked = any(word in text for word in ("locked", "busy", "lock timeout"))
    return "database_locked" if locked else "writes_refused"


def _runner_reasons(svc: Services, runner: Any | None) -> list[str]:
    status = getattr(runner, "status", None)
    if status is None:
        return []
    reasons = []
    if status.consecutive_failures >= svc.settings.health_runner_failures:
        reasons.append("runner_failing")
    if getattr(runner, "kind", None) == "thread" and not status.running:
        reasons.append("runner_stopped")
    return reasons


def calendar_estimated_years(svc: Services) -> tuple[int, ...]:
    """This year and the next, and the years deadlines were computed on, that are only estimated."""
    calendars = svc.catalog.calendars
    now = svc.clock.now()
    soon = calendars.estimated_years(now, now.replace(year=now.year + 1, month=1, day=1))
    return tuple(sorted(set(soon) | set(calendars.estimated_years_used())))


def assess_health(svc: Services, runner: Any | None = None) -> Health:
    """The database (reads, and a cached write probe), the runner's last polls and the due timers.

    ``runner``: this process's timer runner (its ``status``), or None when other processes fire timers.
    """
    estimated = calendar_estimated_years(svc)
    if not svc.db.ping():
        return Health("unavailable", ("database_unavailable",), "unavailable", None,
                      calendar_estimated_years=estimated)
    reasons = []
    write_error = svc.db.probe_write(max_age=PROBE_MAX_AGE_S)
    if write_error is not None:
        reasons.append(_write_reason(write_error))
    reasons += _runner_reasons(svc, runner)
    try:
        backlog = timer_backlog(svc)
    except StoreError:
        return Health("unavailable", ("database_unavailable",), "unavailable", None, write_error, estimated)
    if backlog.lag_s > svc.settings.health_max_timer_lag:
        reasons.append("timers_overdue")
    ordered = tuple(r for r in REASONS if r in reasons)
    return Health("degraded" if ordered else "ok", ordered, "ok", backlog, write_error, estimated)
