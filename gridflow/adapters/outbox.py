"""The outbox dispatcher: deliver side effects written in the same transaction as each change.

A change to a case and the notifications it causes commit together (see
``service.recording.apply_decision``), so a notification exists exactly when its change
does. This module delivers them afterwards, at least once:

1. *claim* — in one short transaction, take up to ``limit`` due rows
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers share the
   work), count the attempt and push ``next_attempt_at`` out by a lease;
2. *send* — outside any transaction (a slow webhook holds no locks);
3. *record* — mark each row sent, or schedule the next attempt after an
   exponential backoff, or give up after ``MAX_ATTEMPTS`` (status ``dead``).

A worker that dies between 1 and 3 leaves its rows to come back when the lease
runs out. Nothing here needs Celery: the worker task calls
:func:`dispatch_outbox`, and so can a test or a cron job.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Sequence

import sqlalchemy as sa

from .notifiers import DeliveryFailed, Message, Notifier
from .orm import OutboxRow

log = logging.getLogger(__name__)

BASE_DELAY_S = 2.0
MAX_DELAY_S = 3600.0
MAX_ATTEMPTS = 10
#: How long a claimed row stays invisible to other dispatchers: longer than any send.
LEASE_S = 120.0

_OUTBOX = OutboxRow.__table__


def backoff(attempt: int, *, base: float = BASE_DELAY_S, cap: float = MAX_DELAY_S,
            rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): base·2^(attempt-1), capped.

    Jitter keeps half to all of it, so rows that failed together (a webhook that
    was down) do not all come back in the same second.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (0.5 + 0.5 * rand())


@dataclass
class OutboxReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.dead


def has_due(svc) -> bool:
    """Is any row waiting to be sent now? (One index lookup; the scheduler asks it every cycle.)"""
    stmt = sa.select(_OUTBOX.c.id).where(_OUTBOX.c.status == "pending",
                                         _OUTBOX.c.next_attempt_at <= svc.clock.now()).limit(1)
    with svc.db.connect() as conn:
        return conn.execute(stmt).first() is not None


def _claim(svc, limit: int) -> list[sa.Row]:
    now = svc.clock.now()
    due = (sa.select(_OUTBOX.c.id)
           .where(_OUTBOX.c.status == "pending", _OUTBOX.c.next_attempt_at <= now)
           .order_by(_OUTBOX.c.next_attempt_at).limit(limit))
    if svc.db.dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (sa.update(_OUTBOX).where(_OUTBOX.c.id.in_(due.scalar_subquery()))
            .values(attempts=_OUTBOX.c.attempts + 1, next_attempt_at=now + timedelta(seconds=LEASE_S))
            .returning(_OUTBOX.c.id, _OUTBOX.c.kind, _OUTBOX.c.payload, _OUTBOX.c.attempts))
    with svc.db.connect() as conn, conn.begin():
        return sorted(conn.execute(stmt).all(), key=lambda r: r.id)


def _send(notifiers: Sequence[Notifier], message: Message) -> str | None:
    """Deliver to every notifier; the first failure, as text, or None when all succeeded."""
    for notifier in notifiers:
        try:
            notifier.send(message)
        except DeliveryFailed as exc:
            return f"{notifier.name}: {exc}"
        except Exception as exc:  # a broken notifier must not lose the row: retry it like a failure
            log.exception("notifier %s crashed", notifier.name, extra={"outbox_id": message.outbox_id})
            return f"{notifier.name}: {exc!r}"
    return None


def dispatch_outbox(svc, notifiers: Sequence[Notifier], *, limit: int = 100,
                    deadline: float | None = None) -> OutboxReport:
    """Claim, send and record up to ``limit`` due outbox rows. Raises DatabaseUnavailable if the database is away.

    ``deadline`` (``time.monotonic()``): rows not yet sent when it passes are handed back untried.
    """
    report = OutboxReport()
    rows = _claim(svc, limit)
    if not rows:
        return report
    updates: list[dict] = []
    for row in rows:
        now = svc.clock.now()
        if deadline is not None and time.monotonic() > deadline:
            updates.append({"_id": row.id, "v_status": "pending", "v_attempts": row.attempts - 1,
                            "v_next": now, "v_error": None})
            continue
        message = Message(row.id, row.kind, row.payload or {}, row.attempts)
        error = _send(notifiers, message)
        extra = {"outbox_id": row.id, "case": message.case, "kind": row.kind, "attempt": row.attempts}
        if error is None:
            report.sent += 1
            updates.append({"_id": row.id, "v_status": "sent", "v_attempts": row.attempts, "v_next": now,
                            "v_error": None})
        elif row.attempts >= MAX_ATTEMPTS:
            report.dead += 1
            log.error("notification given up after %d attempts: %s", row.attempts, error, extra=extra)
            updates.append({"_id": row.id, "v_status": "dead", "v_attempts": row.attempts, "v_next": now,
                            "v_error": error})
        else:
            report.retried += 1
            delay = backoff(row.attempts)
            log.warning("notification failed, retrying in %.1fs: %s", delay, error, extra=extra)
            updates.append({"_id": row.id, "v_status": "pending", "v_attempts": row.attempts, "v_error": error,
                            "v_next": now + timedelta(seconds=delay)})
    stmt = (sa.update(_OUTBOX).where(_OUTBOX.c.id == sa.bindparam("_id"))
            .values(status=sa.bindparam("v_status"), attempts=sa.bindparam("v_attempts"),
                    next_attempt_at=sa.bindparam("v_next"), last_error=sa.bindparam("v_error")))
    with svc.db.connect() as conn, conn.begin():
        conn.execute(stmt, updates)
    return report
