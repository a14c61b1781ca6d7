"""Firing durable timers: every due deadline, warning and repeat passes through here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from ..engine.case import TimerSpec
from ..engine.errors import GridflowError, StoreUnavailable, VersionConflict
from .context import Change, Services
from .ports import ChainedEvent
from .recording import apply_decision, change_of, db_errors
from .unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FireOutcome:
    timer_id: int
    status: str  # fired, stale, missing, failed
    number: str | None = None
    events: tuple[str, ...] = ()
    lateness_s: float | None = None


@db_errors
def fire_timer(svc: Services, timer_id: int, *, attempts: int = 5) -> FireOutcome:
    """Fire one durable timer through the engine. Idempotent: a missing or stale timer changes nothing."""

    for attempt in range(attempts):
        try:
            return _fire_once(svc, timer_id)
        except VersionConflict:  # a lost compare-and-set, or a key a concurrent firing wrote first
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@db_errors
def fire_timers(svc: Services, timer_ids: list[int]) -> list[FireOutcome]:
    """Fire a batch of timers in one transaction (one commit for all), as a worker does.

    If any firing in the batch conflicts with a concurrent change, the whole batch is
    rolled back and each timer is fired on its own instead, so one busy case never holds
    the others back; a timer that fails alone is reported ``failed`` and stays for a retry.
    """

    ids = sorted({int(t) for t in timer_ids})
    try:
        return _fire_batch(svc, ids)
    except VersionConflict:
        pass
    outcomes = []
    for timer_id in ids:
        try:
            outcomes.append(fire_timer(svc, timer_id))
        except StoreUnavailable:
            raise
        except GridflowError as exc:
            log.error("timer %s failed: %s", timer_id, exc.message, extra={"timer_id": timer_id})
            outcomes.append(FireOutcome(timer_id, "failed", events=(exc.code,)))
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


@db_errors
def claim_due_timers(svc: Services, runner: str, limit: int | None = None) -> list[tuple[int, datetime]]:
    with svc.uow() as uow:
        claimed = uow.cases.claim_due(svc.clock.now(), limit or svc.settings.timer_batch_size, runner,
                                      svc.settings.timer_claim_seconds)
        uow.commit()
    return claimed


