"""How the service is doing: the timer backlog, for health checks and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import TimerRow
from .context import Services
from .lists import as_utc


@dataclass(frozen=True)
class TimerBacklog:
    pending: int
    due: int
    oldest_due_at: datetime | None
    lag_s: float


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
