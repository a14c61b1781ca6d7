"""Firing durable timers through the service, on the in-memory store: no database, no sleeping."""

from __future__ import annotations

from datetime import datetime, timezone

from gridflow.engine.case import Actor
from gridflow.engine.clock import ManualClock
from gridflow.service.intake import ReportCase, report_case
from gridflow.service.timers import fire_timers
from tests.unit.fakes import FakeStore, fake_services

START = datetime(2026, 9, 30, 0, 0, tzinfo=timezone.utc)
GRID_WORKER = Actor("gw-1", "grid_worker", "37060200100101")


def _reported():
    store, clock = FakeStore(), ManualClock(START)
    svc = fake_services(store, clock)
    number = report_case(svc, ReportCase("grid_event", GRID_WORKER, category="C0101",
                                         description="井盖缺失")).number
    return store, clock, svc, number


def test_an_unacknowledged_report_is_warned_then_breached_and_escalated_when_its_timers_fire():
    store, clock, svc, number = _reported()
    timers = store.timers(number)
    (warning,) = [i for i, t in timers.items() if t.kind == "warning"]
    (breach,) = [i for i, t in timers.items() if t.kind == "breach"]
    clock.set(timers[warning].due_at)
    fired, = fire_timers(svc, [warning])
    assert fired.status == "fired" and fired.number == number and fired.events
    assert warning not in store.timers(number)
    version = store.case(number).version
    clock.set(timers[breach].due_at)
    (outcome,) = fire_timers(svc, [breach])
    case = store.case(number)
    assert outcome.status == "fired" and case.version == version + 1 and case.snapshot.breach_count == 1
    assert case.snapshot.escalation_level == 1
    assert [e.type for e in store.history(number)][-len(outcome.events):] == list(outcome.events)
    assert store.state.outbox  # the breach notified someone


def test_a_timer_already_fired_is_missing_and_changes_nothing():
    store, clock, svc, number = _reported()
    timer_id = next(iter(store.timers(number)))
    clock.set(store.timers(number)[timer_id].due_at)
    fire_timers(svc, [timer_id])
    case, history = store.case(number), store.history(number)
    assert fire_timers(svc, [timer_id])[0].status == "missing"
    assert store.case(number) == case and store.history(number) == history
