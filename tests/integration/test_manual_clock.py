"""A clock users can drive (issue 11, item 10), and unit calendars through the service, on SQLite and
PostgreSQL: ``GRIDFLOW_CLOCK=manual[:ISO]`` wires a manual clock; moving it fires what fell due before
the move is answered, through the running timer runner; refused moves change nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gridflow.bootstrap import ConfigurationInvalid, bootstrap
from gridflow.engine.clock import ManualClock
from gridflow.service.auth import Caller
from gridflow.service.case_view import get_case
from gridflow.service.clock_control import ClockMoveRefused, ClockNotManual, clock_state, move_clock
from gridflow.settings import Settings
from tests.integration.helpers import HOUSING, act, dispatched_case, report, snapshot

#: Monday 2026-03-09 09:00 in Shanghai: a quiet week.
MONDAY_9 = "2026-03-09T09:00:00+08:00"
ADMIN = Caller("admin-1", "admin", None)


@pytest.fixture
def manual_app(db_url):
    apps = []

    def make(runner: str = "inline", **settings):
        settings.setdefault("clock", f"manual:{MONDAY_9}")
        app = bootstrap(Settings(database_url=db_url, environment="test", seed_demo=True, **settings),
                        runner=runner, runner_options={"interval": 3600} if runner == "thread" else None)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def _types(svc, number):
    return [e.type for e in snapshot(svc, number)[1]]


def test_gridflow_clock_manual_starts_at_the_given_instant_and_stands_still(manual_app):
    app = manual_app()
    assert isinstance(app.services.clock, ManualClock)
    state = clock_state(app.services)
    assert state.kind == "manual" and state.adjustable
    assert state.now == datetime.fromisoformat(MONDAY_9)
    assert app.services.clock.now() == state.now


def test_manual_without_an_instant_starts_at_the_real_now(manual_app):
    before = datetime.now(timezone.utc)
    app = manual_app(clock="manual")
    assert before <= app.services.clock.now() <= datetime.now(timezone.utc)


def test_moving_the_clock_fires_what_fell_due_before_answering(manual_app):
    app = manual_app()
    svc = app.services
    number = report(svc).number
    assert "DeadlineBreached" not in _types(svc, number)
    moved = move_clock(svc, advance="P3D", fire_due=app.runner.run_due)
    assert moved.previous == datetime.fromisoformat(MONDAY_9)
    assert moved.now == moved.previous + timedelta(days=3) == svc.clock.now()
    # the triage breach at least; its warning fell due with the breach already past, so it is skipped
    # (misfire: coalesce — a jump of the clock catches up like a runner back from downtime)
    assert moved.fired >= 1
    assert "DeadlineBreached" in _types(svc, number) and "DeadlineWarned" not in _types(svc, number)
    assert all(t.due_at > svc.clock.now() for t in snapshot(svc, number)[2]), "nothing due is left"


def test_moving_to_an_instant_fires_through_the_running_thread_runner(manual_app):
    app = manual_app(runner="thread")
    app.runner.start()
    try:
        svc = app.services
        number = dispatched_case(svc)
        moved = move_clock(svc, to=datetime(2026, 3, 12, 9, tzinfo=timezone(timedelta(hours=8))),
                           fire_due=app.runner.run_due)
        assert moved.fired >= 1
        assert "DeadlineBreached" in _types(svc, number)  # already there: fired before the answer
        assert app.runner.status.fired >= moved.fired
    finally:
        app.runner.stop()


@pytest.mark.parametrize("kwargs, words", [
    ({"advance": "-PT1H"}, "negative"),
    ({"advance": "P400D"}, "more than 366 days"),
    ({"advance": "4 hours"}, "not an ISO 8601 duration"),
    ({"advance": "P1M"}, "no fixed length"),
    ({"to": datetime(2026, 3, 9, 0, tzinfo=timezone.utc)}, "never runs backwards"),
    ({"to": datetime(2026, 3, 9, 9)}, "UTC offset"),
    ({"to": datetime(2028, 1, 1, tzinfo=timezone.utc)}, "more than 366 days"),
    ({}, "exactly one"),
    ({"advance": "PT1H", "to": datetime(2026, 3, 10, tzinfo=timezone.utc)}, "exactly one"),
])
def test_a_refused_move_moves_nothing_and_fires_nothing(manual_app, kwargs, words):
    app = manual_app()
    svc = app.services
    number = report(svc).number
    before = svc.clock.now()
    fired = []
    with pytest.raises(ClockMoveRefused, match=words):
        move_clock(svc, fire_due=lambda: fired.append(1) or [], **kwargs)
    assert svc.clock.now() == before and not fired
    assert "DeadlineWarned" not in _types(svc, number)


def test_a_clock_that_is_not_manual_cannot_be_moved(db_url):
    app = bootstrap(Settings(database_url=db_url, environment="test"), runner="inline")
    try:
        assert clock_state(app.services).kind == "system"
        with pytest.raises(ClockNotManual) as info:
            move_clock(app.services, advance="PT1H", fire_due=app.runner.run_due)
        assert info.value.status == 404 and info.value.code == "clock_not_manual"
    finally:
        app.close()


def test_a_manual_clock_is_refused_where_another_process_fires_timers(db_url):
    with pytest.raises(ConfigurationInvalid, match="manual clock needs the timer runner in this process"):
        bootstrap(Settings(database_url=db_url, environment="test", clock="manual",
                           broker_url="redis://127.0.0.1:6379/0"))


# --- unit calendars and estimated years through the service -----------------------------------


def test_a_department_on_a_7x24_calendar_gets_its_deadlines_on_it_stored_and_explained(
        manual_app, tmp_path):
    units = tmp_path / "units.yaml"
    units.write_text("calendars:\n  housing-7x24:\n    base: cn\n    hours: ['00:00-24:00']\n"
                     "    weekend: []\n    public_holidays: worked\n    units: [dept-housing]\n",
                     encoding="utf-8")
    app = manual_app(unit_calendars=units, clock="manual:2026-03-13T17:00:00+08:00")  # Friday 17:00
    svc = app.services
    number = dispatched_case(svc)
    row, events, _ = snapshot(svc, number)
    started = [e for e in events if e.type == "DeadlineStarted"][-1]
    assert started.data["calendar"] == "housing-7x24"
    detail = get_case(svc, ADMIN, number)
    # signing for and the handling limit (counted from dispatch), both on the desk's calendar
    assert {d["timer"] for d in detail.deadlines} == {"acknowledge", "handle"}
    assert {d["calendar"]["name"] for d in detail.deadlines} == {"housing-7x24"}
    # the same case reported on the ordinary calendar in the triage state kept "cn"
    assert [e.data["calendar"] for e in events if e.type == "DeadlineStarted"][0] == "cn"
    # it fires on the desk's calendar over the weekend
    move_clock(svc, advance="P2D", fire_due=app.runner.run_due)
    assert "DeadlineBreached" in _types(svc, number)


def test_a_deadline_running_into_an_estimated_year_is_flagged_in_the_case_view(manual_app):
    from gridflow.engine.calendar import china_year_is_estimated

    year = next(y for y in range(2027, 2100) if china_year_is_estimated(y))
    app = manual_app(clock=f"manual:{year - 1}-12-30T09:00:00+08:00")
    svc = app.services
    number = dispatched_case(svc)
    move_clock(svc, advance="PT1H", fire_due=app.runner.run_due)
    act(svc, number, "acknowledge", HOUSING)  # 16 working hours from dispatch (Wednesday 09:00): into January
    detail = get_case(svc, ADMIN, number)
    flagged = [d for d in detail.deadlines if d["calendar_estimated"]]
    assert flagged and all(d["calendar_estimated_years"] == [year] for d in flagged)


def test_a_unit_calendar_for_a_unit_nobody_knows_is_warned_about_at_start(manual_app, tmp_path, caplog):
    import logging

    units = tmp_path / "units.yaml"
    units.write_text("calendars:\n  rota:\n    base: cn\n    days: {saturday: ['08:30-12:00']}\n"
                     "    units: [dept-housing, dept-hosuing]\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="gridflow.bootstrap"):
        manual_app(unit_calendars=units)
    unknown = [r.unit for r in caplog.records if hasattr(r, "unit")]
    assert unknown == ["dept-hosuing"]
