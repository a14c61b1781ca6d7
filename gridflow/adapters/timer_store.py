"""The timers table as runners and the scheduler see it: which timers are due, and whose hands they are in.

A timer is *claimed* (``status='claimed'`` until ``claim_expires_at``) by the runner
or scheduler that will have it fired, and *taken* — deleted, in the firing
transaction, by ``uow.cases.take_timer`` — when it fires. A claim that runs out
(its runner died) makes the timer free again. Each claim is one short transaction
of its own; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several claimers work
side by side, on SQLite the write transaction is exclusive anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import sqlalchemy as sa

from .db import Database
from .orm import TimerRow

_TIMERS = TimerRow.__table__


def _unattended(now: datetime):
    """Due, and in nobody's hands: pending, or claimed by a runner whose claim ran out."""
    return sa.and_(_TIMERS.c.due_at <= now,
                   sa.or_(_TIMERS.c.status == "pending",
                          sa.and_(_TIMERS.c.status == "claimed", _TIMERS.c.claim_expires_at < now)))


class SqlTimerStore:
    """Claims and releases on the timers table (Core SQL, outside the case repository)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pg = db.dialect == "postgresql"

    def _write(self):
        """One write transaction; on SQLite queued with the process's writers, as a unit of work is."""
        return self.db.writing()

    def _rows(self, stmt) -> list[tuple[int, datetime]]:
        with self.db.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(stmt)]

    # --- the claim ------------------------------------------------------------------------------

    def claim(self, now: datetime, runner: str, seconds: float, *, limit: int | None = None,
              ids: Sequence[int] | None = None) -> list[tuple[int, datetime]]:
        """Reserve due, unattended timers for ``runner`` until ``now + seconds``: (id, due_at) by due time.

        ``limit``: at most that many, the earliest due. ``ids``: only those of these timers that
        still exist, are due and are not in someone else's hands (the scheduler's hand-over).
        """
        if ids is not None and not ids:
            return []
        free = sa.select(_TIMERS.c.id).where(_unattended(now))
        if ids is not None:
            free = free.where(_TIMERS.c.id.in_(list(ids)))
        if limit is not None:
            free = free.order_by(_TIMERS.c.due_at).limit(limit)
        if self.pg:  # a row another claimer (or a firing) has locked is skipped, not waited for
            free = free.with_for_update(skip_locked=True)
        stmt = (sa.update(_TIMERS).where(_TIMERS.c.id.in_(free.scalar_subquery()))
                .values(status="claimed", claimed_by=runner,
                        claim_expires_at=now + timedelta(seconds=seconds))
                .returning(_TIMERS.c.id, _TIMERS.c.due_at))
        with self._write() as conn:
            rows = [(r[0], r[1]) for r in conn.execute(stmt)]
        return sorted(rows, key=lambda r: (r[1], r[0]))

    def release(self, ids: Sequence[int], runner: str) -> None:
        """Hand back timers ``runner`` claimed but will not have fired (a task that could not be sent)."""
        if not ids:
            return
        with self._write() as conn:
            conn.execute(sa.update(_TIMERS)
                         .where(_TIMERS.c.id.in_(list(ids)), _TIMERS.c.claimed_by == runner)
                         .values(status="pending", claimed_by=None, claim_expires_at=None))

    def release_all(self) -> int:
        """Hand back every claim (the queued tasks holding them may be lost); how many there were."""
        with self._write() as conn:
            return conn.execute(sa.update(_TIMERS).where(_TIMERS.c.status == "claimed")
                                .values(status="pending", claimed_by=None, claim_expires_at=None)).rowcount

    # --- what the scheduler's index is built from -----------------------------------------------

    def max_id(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(_TIMERS.c.id))).scalar() or 0)

    def after(self, after_id: int, limit: int) -> list[tuple[int, datetime]]:
        return self._rows(sa.select(_TIMERS.c.id, _TIMERS.c.due_at).where(_TIMERS.c.id > after_id)
                          .order_by(_TIMERS.c.id).limit(limit))

    def by_ids(self, ids: Sequence[int]) -> list[tuple[int, datetime]]:
        if not ids:
            return []
        return self._rows(sa.select(_TIMERS.c.id, _TIMERS.c.due_at).where(_TIMERS.c.id.in_(list(ids))))

    def unattended(self, now: datetime, limit: int) -> list[tuple[int, datetime]]:
        """Due timers nobody has in hand, earliest first (read only: the scheduler's sweep)."""
        return self._rows(sa.select(_TIMERS.c.id, _TIMERS.c.due_at).where(_unattended(now))
                          .order_by(_TIMERS.c.due_at).limit(limit))

    def existing(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        with self.db.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(_TIMERS.c.id).where(_TIMERS.c.id.in_(list(ids))))}
