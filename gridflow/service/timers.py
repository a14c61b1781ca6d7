"""Firing durable timers: every due deadline, warning and repeat passes through here."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..adapters.ports import ChainedEvent, UnitOfWork
from ..engine.case import TimerSpec
from ..engine.errors import GridflowError, StoreUnavailable, VersionConflict
from .context import Change, Services
from .recording import apply_decision, change_of, db_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FireOutcome:
    timer_id: int
    status: str  # fired, stale, missing, failed
    number: str | None = None
    events: tuple[str, ...] = ()
    lateness_s: float | None = None
    error: str | None = None  # why a ``failed`` firing failed


def _fire_alone(svc: Services, timer_id: int, *, attempts: int = 5) -> FireOutcome:
    """Fire one timer in a transaction of its own, trying again when a concurrent change got in first."""
    for attempt in range(attempts):
        try:
            return _fire_once(svc, timer_id)
        except VersionConflict:  # a lost compare-and-set, or a key a concurrent firing wrote first
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@db_errors
def fire_timers(svc: Services, timer_ids: list[int]) -> list[FireOutcome]:
    """Fire a batch of durable timers through the engine in one transaction (one commit for all).

    The one firing entry, for every runner (in-process or Celery worker). Idempotent: a
    missing timer (already fired or cancelled) or a stale one changes nothing. If any
    firing in the batch conflicts with a concurrent change, the whole batch is rolled
    back and each timer is fired on its own instead, so one busy case never holds the
    others back; a timer that fails alone is reported ``failed`` and stays for a retry.
    """

    ids = sorted({int(t) for t in timer_ids})
    try:
        return _fire_batch(svc, ids)
    except VersionConflict:
        pass
    outcomes = []
    for timer_id in ids:
        try:
            outcomes.append(_fire_alone(svc, timer_id))
        except StoreUnavailable:
            raise
        except GridflowError as exc:
            log.error("timer %s failed: %s", timer_id, exc.message, extra={"timer_id": timer_id})
            outcomes.append(FireOutcome(timer_id, "failed", events=(exc.code,), error=exc.message))
    return outcomes


def _fire_batch(svc: Services, ids: list[int]) -> list[FireOutcome]:
    outcomes: list[FireOutcome] = []
    changes: list[Change] = []
    with svc.uow() as uow:
        for timer_id in ids:
            outcome, change = _fire_in(svc, uow, timer_id)
            outcomes.append(outcome)
            if change is not None:
                changes.append(change)
        uow.commit()
    for change in changes:
        svc.publish(change)
    return outcomes


def _fire_in(svc: Services, uow: UnitOfWork, timer_id: int) -> tuple[FireOutcome, Change | None]:
    """One firing inside the caller's transaction."""
    taken = uow.cases.take_timer(timer_id)
    if taken is None:
        return FireOutcome(timer_id, "missing"), None
    key, due_at, case = taken
    snap = case.snapshot
    engine = svc.catalog.engine(snap.workflow, snap.version)
    now = svc.clock.now()
    decision = engine.fire(snap, TimerSpec.parse_key(key, due_at), now)
    events: list[ChainedEvent] = []
    if decision.changed:
        svc.units.refresh(uow.connection)
        case, events = apply_decision(svc, uow, case, decision)
    outcome = FireOutcome(timer_id, "fired" if events else "stale", case.number,
                          tuple(e.type for e in events), max(0.0, (now - due_at).total_seconds()))
    return outcome, (change_of(case, events, "timer") if events else None)


def _fire_once(svc: Services, timer_id: int) -> FireOutcome:
    with svc.uow() as uow:
        outcome, change = _fire_in(svc, uow, timer_id)
        uow.commit()
    if change is not None:
        svc.publish(change)
    return outcome

