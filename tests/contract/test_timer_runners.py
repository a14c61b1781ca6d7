"""The timer contract, run against every runner: inline, thread, and Celery (scheduler + real worker).

Whichever runner has them fired, due timers take effect once each, late ones record
how late they were, stale ones change nothing, and offering a timer again is harmless.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from gridflow.adapters.orm import EventRow, TimerRow
from tests.integration.helpers import HOUSING, act, dispatched_case, snapshot


def _events(svc, number, type_):
    return [e for e in snapshot(svc, number)[1] if e.type == type_]


def test_unacknowledged_case_escalates_to_street_after_one_working_day(harness, clock):
    svc = harness.svc
    number = dispatched_case(svc)  # Wed 2026-09-30 08:00 local, the last working day before the holiday
    clock.set(clock.now() + timedelta(days=8, hours=1))  # Thu 2026-10-08 09:00 local: still within the day
    harness.settle()
    assert not _events(svc, number, "DeadlineBreached")
    clock.set(clock.now() + timedelta(hours=9))  # after close of business on 10-08
    harness.settle()
    row, events, timers = snapshot(svc, number)
    breaches = [e for e in events if e.type == "DeadlineBreached"]
    assert len(breaches) == 1 and breaches[0].data["deadline"].startswith("acknowledge")
    assert row.escalation_level == 1 and row.escalation_unit == "370602001"  # 向阳街道
    if harness.kind != "celery":  # a worker on the real clock fires late: past its breach, a warning is moot
        assert any(e.type == "DeadlineWarned" for e in events)
    # the repeat: a further breach climbs further (the handling limit, counted from dispatch, runs too)
    assert [t.kind for t in timers if t.deadline_id.startswith("acknowledge")] == ["breach"]


def test_runner_back_after_downtime_fires_what_fell_due_once_each_and_records_lateness(harness, clock):
    svc = harness.svc
    numbers = [dispatched_case(svc) for _ in range(3)]
    due = {n: next(t.due_at for t in snapshot(svc, n)[2]
                   if t.kind == "breach" and t.deadline_id.startswith("acknowledge")) for n in numbers}
    clock.set(clock.now() + timedelta(days=8, hours=10))  # the runner was down over the holiday week
    harness.settle()
    harness.settle()  # a restart: nothing fires twice
    for n in numbers:
        [breach] = _events(svc, n, "DeadlineBreached")
        # the acknowledge warning fell due with its breach passed too: skipped (misfire: coalesce); the
        # handling limit's warning was still ahead of its breach (unless the runner fires later still)
        warned = _events(svc, n, "DeadlineWarned")
        assert len(warned) <= 1 and all(w.data["deadline"].startswith("handle") for w in warned)
        assert breach.data["lateness_s"] >= (clock.now() - due[n]).total_seconds() - 1


def test_timer_of_a_case_that_moved_on_is_stale(harness, clock):
    svc = harness.svc
    number = dispatched_case(svc)
    breach = next(t for t in snapshot(svc, number)[2] if t.kind == "breach")
    act(svc, number, "acknowledge", HOUSING)
    # Re-insert a copy of the old row as if a broker redelivered it after the case moved on,
    # due before anything the case has scheduled since.
    due_at = clock.now() + timedelta(minutes=1)
    with svc.uow() as uow:
        uow.session.add(TimerRow(case_id=breach.case_id, key=breach.key, deadline_id=breach.deadline_id,
                                 kind="breach", due_at=due_at, set_at_version=breach.set_at_version))
        uow.commit()
    before = snapshot(svc, number)[0].version
    clock.set(due_at + timedelta(seconds=1))
    harness.settle()
    row, _, timers = snapshot(svc, number)
    assert row.version == before
    assert not _events(svc, number, "DeadlineBreached")
    assert breach.key not in {t.key for t in timers}, "the stale timer is gone"


def test_a_timer_offered_again_after_it_fired_changes_nothing(harness, clock):
    svc = harness.svc
    number = dispatched_case(svc)
    clock.set(clock.now() + timedelta(days=9))
    ids = [t.id for t in snapshot(svc, number)[2] if t.due_at <= clock.now()]  # those that fell due
    harness.settle()
    before = snapshot(svc, number)[0].version
    harness.redeliver(ids)
    assert snapshot(svc, number)[0].version == before
    assert len(_events(svc, number, "DeadlineBreached")) == 1


def test_rating_deadline_passing_rates_by_default(harness, clock):
    svc = harness.svc
    number = dispatched_case(svc)
    act(svc, number, "acknowledge", HOUSING)
    act(svc, number, "reply", HOUSING, {"result": "已更换灯泡"})
    clock.set(clock.now() + timedelta(days=30))
    harness.settle()
    row, events, _ = snapshot(svc, number)
    assert row.state in ("reviewing",) and row.rating == "satisfied"
    assert any(e.type == "ActionTaken" and e.data["action"] == "rate_by_default" for e in events)


def test_two_runners_side_by_side_fire_each_timer_once(open_harness, clock):
    harness = open_harness(runners=2)
    svc = harness.svc
    numbers = [dispatched_case(svc) for _ in range(12)]
    clock.set(clock.now() + timedelta(days=9))
    harness.settle()
    with svc.uow(write=False) as uow:
        breaches = uow.session.exec(select(EventRow).where(EventRow.type == "DeadlineBreached")).all()
    assert len(breaches) == len(numbers)
    assert len({(b.case_id, b.data["deadline"], b.data["breach"]) for b in breaches}) == len(numbers)
