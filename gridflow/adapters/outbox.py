"""The outbox table: claim due rows under a lease, and record how each delivery went.

A change to a case and the notifications it causes commit together (see
``service.recording.apply_decision``); the dispatcher (:mod:`gridflow.processes.outbox`)
delivers them afterwards. Here are its three statements: *claim* up to ``limit`` due
rows in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
dispatchers share the work), counting the attempt and pushing ``next_attempt_at`` out
by a lease; *record* every row's result in one batch; and *has_due*, one index lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

import sqlalchemy as sa

from .db import Database
from .orm import OutboxRow

_OUTBOX = OutboxRow.__table__


@dataclass(frozen=True)
class Delivery:
    """What became of one claimed row: sent, pending again (at ``next_attempt_at``) or dead."""

    id: int
    status: str
    attempts: int
    next_attempt_at: datetime
    error: str | None = None


class SqlOutbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def has_due(self, now: datetime) -> bool:
        """Is any row waiting to be sent now? (The scheduler asks every cycle.)"""
        stmt = (sa.select(_OUTBOX.c.id)
                .where(_OUTBOX.c.status == "pending", _OUTBOX.c.next_attempt_at <= now).limit(1))
        with self.db.connect() as conn:
            return conn.execute(stmt).first() is not None

    def claim(self, now: datetime, limit: int, lease_s: float) -> list[sa.Row]:
        """Up to ``limit`` due rows (id, kind, payload, attempts counting this one), hidden ``lease_s``."""
        due = (sa.select(_OUTBOX.c.id)
               .where(_OUTBOX.c.status == "pending", _OUTBOX.c.next_attempt_at <= now)
               .order_by(_OUTBOX.c.next_attempt_at).limit(limit))
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        stmt = (sa.update(_OUTBOX).where(_OUTBOX.c.id.in_(due.scalar_subquery()))
                .values(attempts=_OUTBOX.c.attempts + 1, next_attempt_at=now + timedelta(seconds=lease_s))
                .returning(_OUTBOX.c.id, _OUTBOX.c.kind, _OUTBOX.c.payload, _OUTBOX.c.attempts))
        with self.db.writing() as conn:
            return sorted(conn.execute(stmt).all(), key=lambda r: r.id)

    def record(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        stmt = (sa.update(_OUTBOX).where(_OUTBOX.c.id == sa.bindparam("_id"))
                .values(status=sa.bindparam("v_status"), attempts=sa.bindparam("v_attempts"),
                        next_attempt_at=sa.bindparam("v_next"), last_error=sa.bindparam("v_error")))
        rows = [{"_id": d.id, "v_status": d.status, "v_attempts": d.attempts, "v_next": d.next_attempt_at,
                 "v_error": d.error} for d in deliveries]
        with self.db.writing() as conn:
            conn.execute(stmt, rows)
