"""Delivering the outbox: side effects written in the same transaction as each change, sent afterwards.

At least once, in three steps: *claim* a few due rows under a lease (one short
transaction, :class:`gridflow.adapters.outbox.SqlOutbox`); *send* each through the
notifiers outside any transaction (a slow webhook holds no locks); *record* each
row sent, or due again after an exponential backoff, or given up after
``GRIDFLOW_OUTBOX_MAX_ATTEMPTS`` (status ``dead``: a dead letter, listed and retried by an admin).
Each row goes to the notifiers of its audience only (staff, the resident, one
webhook subscriber). The claim is the attempt's record: it happens before
anything is sent. Recording the outcome is retried until it
sticks (a locked or full database for a while must not send a notification
again); only a dispatcher that dies, or gives up after ``RECORD_FOR_S``, leaves
its rows to come back when the lease runs out — and then each goes out again
with the same idempotency key (the outbox row's id), for the receiver to drop
(see :mod:`gridflow.adapters.notifiers`). Nothing here needs
Celery: the worker's task, the thread runner, a test or a cron job call
:func:`dispatch_outbox`.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Sequence

from ..adapters.notifiers import DeliveryFailed, Message, Notifier, serves
from ..adapters.outbox import Delivery, SqlOutbox
from ..engine.errors import StoreUnavailable
from ..service.context import Services

log = logging.getLogger(__name__)

BASE_DELAY_S = 2.0
MAX_DELAY_S = 3600.0
MAX_ATTEMPTS = 10
#: How long a claimed row stays invisible to other dispatchers: longer than any send.
LEASE_S = 120.0
#: How long a dispatcher keeps trying to record what it sent: well inside the lease, so no other
#: dispatcher has claimed the rows again meanwhile.
RECORD_FOR_S = LEASE_S / 2


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


def _send(notifiers: Sequence[Notifier], message: Message) -> str | None:
    """Deliver to every notifier of the message's audience; the first failure, as text, or None when all
    succeeded."""
    for notifier in notifiers:
        if not serves(notifier, message):
            continue
        try:
            notifier.send(message)
        except DeliveryFailed as exc:
            return f"{notifier.name}: {exc}"
        except Exception as exc:  # a broken notifier must not lose the row: retry it like a failure
            log.exception("notifier %s crashed", notifier.name, extra={"outbox_id": message.outbox_id})
            return f"{notifier.name}: {exc!r}"
    return None


def _deliver(svc: Services, notifiers: Sequence[Notifier], row, report: OutboxReport) -> Delivery:
    """Send one claimed row and say what becomes of it."""
    now = svc.clock.now()
    message = Message(row.id, row.kind, row.payload or {}, row.attempts)
    error = _send(notifiers, message)
    extra = {"outbox_id": row.id, "case": message.case, "kind": row.kind, "attempt": row.attempts}
    if error is None:
        report.sent += 1
        return Delivery(row.id, "sent", row.attempts, now)
    settings = svc.settings
    if row.attempts >= (settings.outbox_max_attempts if settings is not None else MAX_ATTEMPTS):
        report.dead += 1
        log.error("notification given up after %d attempts: %s", row.attempts, error, extra=extra)
        return Delivery(row.id, "dead", row.attempts, now, error)
    report.retried += 1
    delay = backoff(row.attempts, base=settings.outbox_backoff_base if settings is not None else BASE_DELAY_S)
    log.warning("notification failed, retrying in %.1fs: %s", delay, error, extra=extra)
    return Delivery(row.id, "pending", row.attempts, now + timedelta(seconds=delay), error)


def record_until_it_sticks(outbox: SqlOutbox, deliveries: Sequence[Delivery], *, give_up_at: float,
                           sleep: Callable[[float], None] = time.sleep) -> None:
    """Record what became of the rows sent, retrying (0.1 s, 0.2 s … 2 s apart) while the database is
    locked or away; StoreUnavailable once ``give_up_at`` (monotonic) would pass."""
    delay = 0.1
    while True:
        try:
            outbox.record(deliveries)
            return
        except StoreUnavailable as exc:
            if time.monotonic() + delay > give_up_at:
                log.error("outbox: could not record %d deliveries, they come back after their lease: %s",
                          len(deliveries), exc.cause or exc.message)
                raise
            log.warning("outbox: recording %d deliveries failed, retrying in %.1fs: %s", len(deliveries),
                        delay, exc.cause or exc.message)
            sleep(delay)
            delay = min(2.0, delay * 2)


def dispatch_outbox(svc: Services, notifiers: Sequence[Notifier], *, limit: int = 100,
                    deadline: float | None = None) -> OutboxReport:
    """Claim, send and record up to ``limit`` due outbox rows; StoreUnavailable if the database is away.

    ``deadline`` (``time.monotonic()``): rows not yet sent when it passes are handed back untried, and
    recording stops being retried then (else ``RECORD_FOR_S`` after the claim).
    """
    outbox = SqlOutbox(svc.db)
    report = OutboxReport()
    rows = outbox.claim(svc.clock.now(), limit, LEASE_S)
    give_up_at = time.monotonic() + RECORD_FOR_S
    deliveries: list[Delivery] = []
    for row in rows:
        if deadline is not None and time.monotonic() > deadline:
            deliveries.append(Delivery(row.id, "pending", row.attempts - 1, svc.clock.now()))
            continue
        deliveries.append(_deliver(svc, notifiers, row, report))
    if deliveries:
        record_until_it_sticks(outbox, deliveries,
                               give_up_at=min(give_up_at, deadline) if deadline is not None else give_up_at)
    return report
