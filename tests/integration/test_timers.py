"""Durable timers: fired through the service, idempotent, caught up after downtime, shared by runners.

What every runner must do is tests/contract/test_timer_runners.py; here, the service entry and the
in-process runners' own details.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import select

from gridflow.adapters.orm import EventRow, TimerRow
from gridflow.adapters.timer_store import SqlTimerStore
from gridflow.processes.runners import InlineTimerRunner
from gridflow.service.timers import fire_timers
from tests.integration.helpers import DISPATCHER, HOUSING, act, dispatched_case, snapshot


def _fire(svc, timer_id):
    [outcome] = fire_timers(svc, [timer_id])
    return outcome


def _claim(svc, runner):
    """Claim what is due, as a runner does before firing: the ids."""
    claimed = SqlTimerStore(svc.db).claim(svc.clock.now(), runner, svc.settings.timer_claim_seconds,
                                          limit=svc.settings.timer_batch_size)
    return [timer_id for timer_id, _due in claimed]


def _events(svc, number, type_):
    return [e for e in snapshot(svc, number)[1] if e.type == type_]


def _due(svc, numbers, kind=None):
    """The timers of these cases that are due now (of one kind, or all)."""
    now = svc.clock.now()
    return [t for n in numbers for t in snapshot(svc, n)[2] if t.due_at <= now and kind in (None, t.kind)]


def _breached_once_per_deadline(svc, number) -> int:
    """At most one breach per deadline after downtime (misfire: coalesce); how many deadlines breached."""
    deadlines = [e.data["deadline"] for e in _events(svc, number, "DeadlineBreached")]
    assert len(deadlines) == len(set(deadlines)), deadlines
    return len(deadlines)


def test_runner_started_after_downtime_fires_what_fell_due_once_each(app, clock):
    numbers = [dispatched_case(app.services) for _ in range(3)]
    clock.set(clock.now() + timedelta(days=8, hours=10))  # the runner was down over the holiday week
    first = InlineTimerRunner(app.services).run_due()
    assert first and all(o.lateness_s is not None for o in first)
    again = InlineTimerRunner(app.services).run_due()  # a restart: nothing fires twice
    assert again == []
    for n in numbers:
        assert len(_events(app.services, n, "DeadlineBreached")) == 1
        assert len(_events(app.services, n, "DeadlineWarned")) == 1


def test_firing_a_timer_twice_changes_nothing(app, clock):
    number = dispatched_case(app.services)
    _, _, timers = snapshot(app.services, number)
    breach = next(t for t in timers if t.kind == "breach")
    clock.set(breach.due_at + timedelta(seconds=1))
    assert _fire(app.services, breach.id).status == "fired"
    assert _fire(app.services, breach.id).status == "missing"
    assert len(_events(app.services, number, "DeadlineBreached")) == 1


def test_timer_of_a_case_that_moved_on_is_stale(app, clock):
    number = dispatched_case(app.services)
    _, _, timers = snapshot(app.services, number)
    breach = next(t for t in timers if t.kind == "breach")
    # Re-insert a copy of the old row as if a broker redelivered it after the case moved on.
    act(app.services, number, "acknowledge", HOUSING)
    with app.services.uow() as uow:
        ghost = TimerRow(case_id=breach.case_id, key=breach.key, deadline_id=breach.deadline_id,
                         kind="breach", due_at=breach.due_at, set_at_version=breach.set_at_version)
        uow.session.add(ghost)
        uow.session.flush()
        ghost_id = ghost.id
        uow.commit()
    clock.set(breach.due_at + timedelta(hours=1))
    before = snapshot(app.services, number)[0].version
    assert _fire(app.services, ghost_id).status == "stale"
    assert snapshot(app.services, number)[0].version == before
    assert not _events(app.services, number, "DeadlineBreached")


def test_suspending_pauses_the_handling_clock_and_resuming_restores_it(app, clock):
    number = dispatched_case(app.services)
    act(app.services, number, "acknowledge", HOUSING)
    act(app.services, number, "request_suspension", HOUSING,
        {"reason_code": "resident_unavailable", "reason": "居民外出，无法入户", "duration": "5wd"})
    act(app.services, number, "approve_suspension", DISPATCHER)
    # no handling timers while the SLA clock is paused: only the suspension's ceiling runs
    assert {t.deadline_id.split(".")[0] for t in snapshot(app.services, number)[2]} == {"suspension_limit"}
    clock.set(clock.now() + timedelta(days=20))  # within the 20 working days the suspension may last
    app.runner.run_due()
    assert not _events(app.services, number, "DeadlineBreached")
    act(app.services, number, "resume", HOUSING)
    timers = snapshot(app.services, number)[2]
    assert {t.kind for t in timers} == {"warning", "breach"}
    assert {t.deadline_id.split(".")[0] for t in timers} == {"handle"}


def test_two_runners_side_by_side_fire_each_timer_once(make_app, db_url, clock):
    app = make_app(db_url)
    numbers = [dispatched_case(app.services) for _ in range(12)]
    clock.set(clock.now() + timedelta(days=9))
    due, due_breaches = _due(app.services, numbers), _due(app.services, numbers, "breach")
    runners = [InlineTimerRunner(app.services, name=f"runner-{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    fired: list[list] = [[], []]

    def run(i):
        barrier.wait()
        fired[i] = runners[i].run_due(limit=3)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with app.services.uow(write=False) as uow:
        breaches = uow.session.exec(select(EventRow).where(EventRow.type == "DeadlineBreached")).all()
    assert len(breaches) == len(due_breaches) >= len(numbers)
    assert len({(b.case_id, b.data["deadline"], b.data["breach"]) for b in breaches}) == len(due_breaches)
    outcomes = fired[0] + fired[1]
    assert len(outcomes) == len(due)  # every due warning and breach timer was taken exactly once
    # A warning taken by one runner after the other fired that case's breach is stale, and rightly so.
    assert sum(1 for o in outcomes if o.status == "fired") >= len(due_breaches)
    assert {o.status for o in outcomes} <= {"fired", "stale"}
    if app.services.db.dialect == "postgresql":
        assert all(fired), "with SKIP LOCKED both runners get work"


def test_expired_claim_of_a_dead_runner_is_taken_over(app, clock):
    number = dispatched_case(app.services)
    clock.set(clock.now() + timedelta(days=9))
    claimed = _claim(app.services, "runner-that-dies")
    assert claimed
    assert InlineTimerRunner(app.services).run_due() == []  # claims still held
    clock.advance(seconds=app.services.settings.timer_claim_seconds + 1)
    outcomes = InlineTimerRunner(app.services).run_due()
    assert "fired" in {o.status for o in outcomes} <= {"fired", "stale"}  # stale: a warning past its breach
    assert _breached_once_per_deadline(app.services, number) >= 1


def test_thread_runner_fires_timers_and_delivers_the_outbox_in_the_background(app, clock):
    import time

    from gridflow.adapters.orm import OutboxRow
    from gridflow.processes.runners import ThreadTimerRunner

    number = dispatched_case(app.services)
    clock.set(clock.now() + timedelta(days=9))
    runner = ThreadTimerRunner(app.services, interval=0.05)
    runner.start()
    try:
        for _ in range(200):
            with app.services.uow(write=False) as uow:
                pending = uow.session.exec(select(OutboxRow).where(OutboxRow.status != "sent")).all()
            if _events(app.services, number, "DeadlineBreached") and not pending:
                break
            time.sleep(0.05)
    finally:
        runner.stop()
    assert len(_events(app.services, number, "DeadlineBreached")) == 1
    assert runner.status.fired >= 2 and not runner.status.running
    with app.services.uow(write=False) as uow:
        rows = uow.session.exec(select(OutboxRow)).all()
    assert rows and all(r.status == "sent" for r in rows)


def test_a_batch_of_timers_fires_in_one_transaction_each_once(app, clock):
    numbers = [dispatched_case(app.services) for _ in range(4)]
    clock.set(clock.now() + timedelta(days=9))
    ids = _claim(app.services, "w")
    outcomes = fire_timers(app.services, ids + ids[:2])  # a redelivered duplicate inside the batch
    assert sorted(o.timer_id for o in outcomes) == sorted(ids)
    assert "fired" in {o.status for o in outcomes} <= {"fired", "stale"}  # stale: a warning past its breach
    assert {o.status for o in fire_timers(app.services, ids)} == {"missing"}
    for n in numbers:
        assert _breached_once_per_deadline(app.services, n) >= 1


def test_a_batch_that_meets_a_concurrent_change_falls_back_to_one_by_one(app, clock, monkeypatch):
    from gridflow.engine.errors import VersionConflict
    from gridflow.service import timers as service_timers

    numbers = [dispatched_case(app.services) for _ in range(3)]
    clock.set(clock.now() + timedelta(days=9))
    ids = _claim(app.services, "w")
    real_fire_in = service_timers._fire_in
    calls = {"n": 0}

    def conflict_once(svc, uow, timer_id):
        calls["n"] += 1
        if calls["n"] == 2:  # a user acted on this case while the batch was running
            raise VersionConflict("case changed")
        return real_fire_in(svc, uow, timer_id)

    monkeypatch.setattr(service_timers, "_fire_in", conflict_once)
    outcomes = service_timers.fire_timers(app.services, ids)
    assert "fired" in {o.status for o in outcomes} <= {"fired", "stale"} and len(outcomes) == len(ids)
    for n in numbers:
        assert _breached_once_per_deadline(app.services, n) >= 1
