"""The daily summary (``unit_day_stats``) kept in the transaction of every change, on SQLite and
PostgreSQL: after random runs of the shipped workflows it equals a recount of the facts table, a rebuild
from the facts, and a rebuild from history; the figures a caller may count follow its area and its unit."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from gridflow.engine.case import Actor
from gridflow.engine.clock import ManualClock
from gridflow.engine.tallies import STORED, tally
from gridflow.service.actions import TakeAction, take_action
from gridflow.service.auth import Caller
from gridflow.service.intake import ReportCase, report_case
from gridflow.service.stats import rebuild_facts, rebuild_summary, sla_stats
from tests.conftest import START, _copy_template, _truncate_pg
from tests.unit.test_stats_property import _play, runs

KEY = ("day", "unit", "district_code", "street_code", "community_code", "grid_code")
GRID, COMMUNITY, STREET = "37060200100101", "370602001001", "370602001"
OTHER_COMMUNITY = "370602002001"


def _summary(svc) -> list[tuple]:
    """Every summary row (key and counters), in key order."""
    with svc.uow(write=False) as uow:
        return [tuple(r) for r in uow.connection.execute(sa.text(
            f"select {', '.join(KEY + STORED)} from unit_day_stats order by {', '.join(KEY)}"))]


def _recount(svc) -> dict[tuple, Counter]:
    """The counters summed straight from the facts table, per key (a second, plain implementation)."""
    out: dict[tuple, Counter] = defaultdict(Counter)
    with svc.uow(write=False) as uow:
        for r in uow.connection.execute(sa.text(
                "select day, unit, district_code, street_code, community_code, grid_code, kind, detail,"
                " on_time from case_facts")):
            key = (str(r[0]), r[1] or "", *(c or "" for c in r[2:6]))
            for name in tally(r.kind, r.detail, None if r.on_time is None else bool(r.on_time)):
                out[key][name] += 1
    return {k: v for k, v in out.items() if +v}


def _as_counters(rows: list[tuple]) -> dict[tuple, Counter]:
    out = {}
    for row in rows:
        key, values = row[:len(KEY)], row[len(KEY):]
        out[(str(key[0]), *key[1:])] = Counter({n: int(v) for n, v in zip(STORED, values) if v})
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def world(request, sqlite_template, tmp_path_factory):
    """Each example on a fresh database of the kind (a SQLite copy, or the run's PostgreSQL database
    emptied) with the demo organisation and its own manual clock."""
    from gridflow.bootstrap import bootstrap
    from gridflow.settings import Settings

    apps = []

    def make():
        while apps:
            apps.pop().close()
        if request.param == "sqlite":
            url = _copy_template(sqlite_template, tmp_path_factory.mktemp("run"))
        else:
            url = request.getfixturevalue("pg_database_url")
            _truncate_pg(url)
        clock = ManualClock(START)
        app = bootstrap(Settings(database_url=url, environment="test", seed_demo=True), clock,
                        runner="inline")
        apps.append(app)
        return app, clock

    yield make
    while apps:
        apps.pop().close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(run=runs())
def test_live_summary_equals_a_recount_of_the_facts_and_both_rebuilds(world, run):
    app, clock = world()
    _play(app, clock, run)
    svc = app.services
    live = _summary(svc)
    assert _as_counters(live) == _recount(svc)
    assert rebuild_summary(svc) == len(live)
    assert _summary(svc) == live  # from the facts
    done = rebuild_facts(svc)
    assert done.summary_rows == len(live)
    assert _summary(svc) == live  # from history


def _dispatched_case(svc) -> str:
    number = report_case(svc, ReportCase("grid_event", Actor("gw-1", "grid_worker", GRID), category="C0101",
                                         description="井盖缺失", unit=GRID)).number
    take_action(svc, TakeAction(number, "dispatch", Actor("cd-1", "community_dispatcher", COMMUNITY),
                                {"department": "dept-housing"}))
    take_action(svc, TakeAction(number, "acknowledge", Actor("dh-housing", "department_handler",
                                                             "dept-housing")))
    return number


def test_figures_a_caller_counts_are_its_areas_cases_and_its_own_units_work(app):
    svc = app.services
    _dispatched_case(svc)
    every = {u.unit for u in sla_stats(svc, Caller("admin", "admin")).units}
    assert every == {COMMUNITY, "dept-housing"}
    for caller in (Caller("cd-1", "community_dispatcher", COMMUNITY),
                   Caller("sd-1", "street_dispatcher", STREET), Caller("gw-1", "grid_worker", GRID),
                   Caller("sv-1", "supervisor", "370602")):
        assert {u.unit for u in sla_stats(svc, caller).units} == every, caller
    assert sla_stats(svc, Caller("cd-2", "community_dispatcher", OTHER_COMMUNITY)).units == []
    own = sla_stats(svc, Caller("dh-housing", "department_handler", "dept-housing"))
    assert [u.unit for u in own.units] == ["dept-housing"] and own.total.receipts == 1
    assert own.total.responded_on_time == 1
    assert sla_stats(svc, Caller("dh-urban", "department_handler", "dept-urban")).units == []
    # narrowed to a unit: its own figures and those of the cases in its area
    assert {u.unit for u in sla_stats(svc, Caller("admin", "admin"), unit=STREET).units} == every
    assert [u.unit for u in sla_stats(svc, Caller("admin", "admin"), unit="dept-housing").units] == [
        "dept-housing"]
    assert sla_stats(svc, Caller("admin", "admin"), unit="370602002").units == []


def test_a_year_of_a_unit_is_summed_from_one_row_per_day_unit_and_area(app):
    svc = app.services
    for _ in range(3):
        _dispatched_case(svc)
    rows = _summary(svc)
    assert len(rows) == 2  # the community's and the department's row of the day: three cases in each
    by_unit = {r[1]: dict(zip(STORED, r[len(KEY):])) for r in rows}
    assert by_unit["dept-housing"]["receipts"] == 3 and by_unit["dept-housing"]["responded_on_time"] == 3
    assert by_unit[COMMUNITY]["received"] == 3
    assert {r[2:len(KEY)] for r in rows} == {("370602", STREET, COMMUNITY, GRID)}


def _daily_sums(svc, lo, hi) -> dict[str, Counter]:
    """Per unit, the daily summary summed over [lo, hi] (every day read from the daily rows)."""
    out: dict[str, Counter] = defaultdict(Counter)
    for row in _summary(svc):
        day = date.fromisoformat(str(row[0]))
        if lo <= day <= hi:
            out[row[1]].update({n: int(v) for n, v in zip(STORED, row[len(KEY):]) if v})
    return {u: c for u, c in out.items() if +c}


def test_periods_over_months_read_whole_months_from_the_monthly_rows_and_agree_with_the_days(app, clock):
    svc = app.services
    for _ in range(5):  # cases over about four months, in steps of 23 days
        _dispatched_case(svc)
        clock.advance(timedelta(days=23))
        app.runner.run_due()
    with svc.uow(write=False) as uow:
        months = uow.connection.execute(sa.text(
            "select count(distinct month) from unit_month_stats")).scalar()
    assert months >= 4
    first = date(2026, 9, 30)
    for lo, hi in ((first, first + timedelta(days=150)), (date(2026, 10, 1), date(2026, 12, 31)),
                   (date(2026, 10, 15), date(2027, 1, 20)), (date(2026, 11, 1), date(2026, 11, 30)),
                   (date(2026, 10, 2), date(2026, 10, 20))):
        report = sla_stats(svc, Caller("admin", "admin"), date_from=lo, date_to=hi)
        got = {u.unit: Counter({n: v for n, v in u.counts.items() if v}) for u in report.units}
        assert got == _daily_sums(svc, lo, hi), (lo, hi)
    everything = sla_stats(svc, Caller("admin", "admin"))
    assert everything.total.receipts == 5 and everything.total.received == 10  # community and department


def test_concurrent_writers_adding_to_the_same_summary_rows_lose_nothing(app):
    """Eight threads signing for eight cases of one department on one day: every receipt's response lands
    in the same two summary rows (daily and monthly), none lost, none deadlocked."""
    import threading

    svc = app.services
    numbers = []
    for _ in range(8):
        number = report_case(svc, ReportCase("grid_event", Actor("gw-1", "grid_worker", GRID),
                                             category="C0101", description="井盖缺失", unit=GRID)).number
        take_action(svc, TakeAction(number, "dispatch", Actor("cd-1", "community_dispatcher", COMMUNITY),
                                    {"department": "dept-housing"}))
        numbers.append(number)
    barrier = threading.Barrier(len(numbers))
    errors: list[BaseException] = []

    def sign(number: str) -> None:
        barrier.wait()
        try:
            take_action(svc, TakeAction(number, "acknowledge", Actor("dh-housing", "department_handler",
                                                                     "dept-housing")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _as_counters(_summary(svc)) == _recount(svc)
    housing = sla_stats(svc, Caller("admin", "admin"), unit="dept-housing").total
    assert housing.receipts == 8 and housing.responded_on_time == 8
