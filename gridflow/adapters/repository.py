"""SQL repositories for cases, history, timers, idempotency keys and the outbox.

All statements run inside the caller's unit of work; nothing here commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlmodel import Session, select

from ..engine.case import TimerSpec
from ..engine.errors import CaseNotFound, VersionConflict
from .orm import CaseRow, EventRow, IdempotencyRow, OutboxRow, TimerRow


class CaseRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def get(self, number: str) -> CaseRow:
        row = self.session.exec(select(CaseRow).where(CaseRow.number == number)).first()
        if row is None:
            raise CaseNotFound(f"no case {number!r}", number=number)
        return row

    def get_by_id(self, case_id: int) -> CaseRow:
        row = self.session.get(CaseRow, case_id)
        if row is None:
            raise CaseNotFound(f"no case with id {case_id}", id=case_id)
        return row

    def add(self, row: CaseRow) -> CaseRow:
        self.session.add(row)
        self.session.flush()
        return row

    def save_versioned(self, row: CaseRow, expected_version: int, values: dict[str, Any]) -> int:
        """Compare-and-set on ``version``: a writer that read an older version matches no row."""
        new_version = expected_version + 1
        result = self.session.execute(
            sa.update(CaseRow).where(CaseRow.id == row.id, CaseRow.version == expected_version)
            .values(version=new_version, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise VersionConflict(
                f"case {row.number} changed while this action was being decided (expected version "
                f"{expected_version}); reload it and try again", number=row.number, expected=expected_version)
        return new_version

    # --- history ------------------------------------------------------------------------------

    def append_events(self, rows: Sequence[EventRow]) -> None:
        self.session.add_all(rows)

    def events(self, case_id: int) -> list[EventRow]:
        return list(self.session.exec(select(EventRow).where(EventRow.case_id == case_id).order_by(EventRow.seq)))

    # --- timers -------------------------------------------------------------------------------

    def schedule(self, case_id: int, specs: Iterable[TimerSpec], version: int) -> list[TimerRow]:
        rows = [TimerRow(case_id=case_id, key=t.key, deadline_id=t.deadline_id, kind=t.kind, due_at=t.due_at,
                         set_at_version=version) for t in specs]
        if rows:
            self.session.add_all(rows)
        return rows

    def cancel(self, case_id: int, deadline_ids: Sequence[str]) -> int:
        if not deadline_ids:
            return 0
        return self.session.execute(
            sa.delete(TimerRow).where(TimerRow.case_id == case_id, TimerRow.deadline_id.in_(list(deadline_ids)))
            .execution_options(synchronize_session=False)
        ).rowcount

    def timer(self, timer_id: int, *, lock: bool = False) -> TimerRow | None:
        stmt = select(TimerRow).where(TimerRow.id == timer_id)
        if lock and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        return self.session.exec(stmt).first()

    def delete_timer(self, timer_id: int) -> None:
        self.session.execute(sa.delete(TimerRow).where(TimerRow.id == timer_id)
                             .execution_options(synchronize_session=False))

    def claim_due(self, now: datetime, limit: int, runner: str, claim_seconds: float) -> list[tuple[int, datetime]]:
        """Reserve up to ``limit`` due timers for ``runner``; expired claims of dead runners are taken over.

        On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several runners claim side by side without
        waiting on each other; on SQLite the write transaction is already exclusive.
        """
        due = (
            select(TimerRow.id, TimerRow.due_at)
            .where(TimerRow.due_at <= now,
                   sa.or_(TimerRow.status == "pending",
                          sa.and_(TimerRow.status == "claimed", TimerRow.claim_expires_at < now)))
            .order_by(TimerRow.due_at).limit(limit)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = self.session.execute(due).all()
        if not rows:
            return []
        self.session.execute(
            sa.update(TimerRow).where(TimerRow.id.in_([r[0] for r in rows]))
            .values(status="claimed", claimed_by=runner, claim_expires_at=now + timedelta(seconds=claim_seconds))
            .execution_options(synchronize_session=False)
        )
        return [(r[0], r[1]) for r in rows]

    def pending_timers(self, case_id: int) -> list[TimerRow]:
        return list(self.session.exec(select(TimerRow).where(TimerRow.case_id == case_id).order_by(TimerRow.due_at)))

    # --- idempotency and outbox ---------------------------------------------------------------

    def idempotency(self, key: str) -> IdempotencyRow | None:
        return self.session.get(IdempotencyRow, key)

    def remember(self, row: IdempotencyRow) -> None:
        self.session.add(row)

    def outbox(self, rows: Sequence[OutboxRow]) -> None:
        if rows:
            self.session.add_all(rows)
