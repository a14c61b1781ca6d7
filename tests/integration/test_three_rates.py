"""The three rates (三率) on real SQLite and PostgreSQL: facts written with the history they come from,
counted per unit by /stats/sla's service, rebuilt from history in one transaction (docs/three-rates.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from gridflow.adapters.repository import SqlCaseRepository
from gridflow.engine.case import Actor
from gridflow.service import stats as stats_module
from gridflow.service.auth import Caller
from gridflow.service.stats import rebuild_facts, sla_stats
from tests.integration.helpers import COMMUNITY, DISPATCHER, GRID_WORKER, HOUSING, act, report, snapshot

ADMIN = Caller("admin", "admin")
OPERATOR = Actor("op-1", "hotline_operator", "370602")
URBAN = Actor("dh-urban", "department_handler", "dept-urban")
STREET_DISPATCHER = Actor("sd-1", "street_dispatcher", "370602001")


def _by_unit(app, **kw):
    report_ = sla_stats(app.services, ADMIN, **kw)
    return {u.unit: u for u in report_.units}, report_.total


def _facts(app) -> list[tuple]:
    with app.services.uow(write=False) as uow:
        return [tuple(r) for r in uow.connection.execute(sa.text(
            "select case_id, seq, unit, kind, day, at, occurred_at, role, on_time, detail, ref, due_at, peer "
            "from case_facts order by case_id, seq, kind, unit"))]


def test_a_department_that_never_signed_for_shows_a_response_rate_of_zero_not_one_hundred(app, clock):
    number = report(app.services).number
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    clock.advance(timedelta(days=12))
    app.runner.run_due()
    units, _ = _by_unit(app)
    housing = units["dept-housing"]
    assert housing.receipts == 1 and housing.awaiting_response == 1 and housing.response_rate == 0.0
    assert housing.breaches >= 1 and units[COMMUNITY].receipts == 0
    assert snapshot(app.services, number)[0].first_response_at is None  # the dispatch is no response


def test_signing_for_is_the_response_and_first_response_at_records_it(app, clock):
    number = report(app.services).number
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    clock.advance(timedelta(hours=1))
    act(app.services, number, "acknowledge", HOUSING)
    housing = _by_unit(app)[0]["dept-housing"]
    assert housing.responded_on_time == 1 and housing.response_rate == 1.0
    assert snapshot(app.services, number)[0].first_response_at == clock.now()


def test_default_and_unrated_closes_are_left_out_of_the_satisfaction_rate(app, clock):
    numbers = []
    for _ in range(4):
        n = report(app.services, "hotline_request", reporter=OPERATOR).number
        act(app.services, n, "dispatch", OPERATOR, {"unit": "dept-urban", "urgency": "general"})
        act(app.services, n, "sign_for", URBAN)
        act(app.services, n, "contact_requester", URBAN, {"reached": True})
        act(app.services, n, "reply", URBAN, {"result": "已处理"})
        act(app.services, n, "call_back", OPERATOR, {"reached": True})
        numbers.append(n)
    for n in numbers[:2]:
        act(app.services, n, "rate", OPERATOR, {"rating": "satisfied"})
    clock.advance(timedelta(days=20))
    app.runner.run_due()  # the other two close unrated
    urban = _by_unit(app)[0]["dept-urban"]
    assert (urban.rated, urban.satisfied, urban.rated_by_default) == (2, 2, 2)
    assert urban.satisfaction_rate == 1.0  # not 50%
    assert urban.resolved == 4 and urban.resolution_rate == 1.0


def test_grid_event_rating_by_default_is_not_counted_as_satisfied(app, clock):
    number = report(app.services).number
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(app.services, number, "acknowledge", HOUSING)
    act(app.services, number, "reply", HOUSING, {"result": "已修复"})
    clock.advance(timedelta(days=20))
    app.runner.run_due()
    housing = _by_unit(app)[0]["dept-housing"]
    assert housing.rated_by_default == 1 and housing.rated == 0 and housing.satisfaction_rate is None


def test_a_dissatisfied_round_and_a_failed_review_leave_a_trace(app):
    number = report(app.services).number
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(app.services, number, "acknowledge", HOUSING)
    act(app.services, number, "reply", HOUSING, {"result": "已修复"})
    act(app.services, number, "rate", GRID_WORKER, {"rating": "dissatisfied"})
    act(app.services, number, "reply", HOUSING, {"result": "重新修复"})
    act(app.services, number, "rate", GRID_WORKER, {"rating": "satisfied"})
    act(app.services, number, "verify_fail", GRID_WORKER, {"reason": "未修好"})
    housing = _by_unit(app)[0]["dept-housing"]
    assert (housing.rework_rounds, housing.failed_reviews) == (1, 1)
    assert (housing.rated, housing.dissatisfied) == (2, 1)
    assert housing.satisfaction_rate == 0.5


def test_returns_and_an_improper_return_are_counted_for_the_returning_unit(app):
    number = report(app.services).number
    why = {"reason_code": "not_our_duty", "reason": "非本部门职责"}
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(app.services, number, "return_case", HOUSING, why)
    units, _ = _by_unit(app)
    assert units["dept-housing"].returns == 1 and units["dept-housing"].unanswered_returned == 1
    assert units["dept-housing"].response_rate == 0.0
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(app.services, number, "return_case", HOUSING, why)  # the second return goes to the street
    act(app.services, number, "uphold_dispatch", STREET_DISPATCHER, {"reason": "属于住建职责"})
    housing = _by_unit(app)[0]["dept-housing"]
    assert (housing.returns, housing.improper_returns, housing.receipts) == (2, 1, 3)
    assert housing.unanswered_returned == 2 and housing.awaiting_response == 1


def test_a_dispatch_counts_in_the_local_day_it_was_made(app, clock):
    clock.set(datetime(2026, 11, 2, 15, 30, tzinfo=timezone.utc))  # 23:30 in Yantai
    number = report(app.services).number
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    clock.advance(timedelta(hours=10))  # 09:30 the next morning
    act(app.services, number, "acknowledge", HOUSING)
    day = date(2026, 11, 2)
    housing = _by_unit(app, date_from=day, date_to=day)[0]["dept-housing"]
    assert housing.receipts == 1 and housing.responded == 1
    assert "dept-housing" not in _by_unit(app, date_from=day + timedelta(days=1))[0]


def test_facts_are_written_in_the_same_transaction_as_the_history(app, monkeypatch):
    number = report(app.services).number
    before = _facts(app)

    def boom(*_a, **_k):
        raise RuntimeError("power cut while writing the facts")

    monkeypatch.setattr(SqlCaseRepository, "add_facts", boom)
    with pytest.raises(RuntimeError):
        act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    monkeypatch.undo()
    assert _facts(app) == before and snapshot(app.services, number)[0].state == "reported"


def test_rebuild_recomputes_exactly_the_facts_written_and_is_atomic(app, clock, monkeypatch):
    a = report(app.services).number
    act(app.services, a, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(app.services, a, "acknowledge", HOUSING)
    act(app.services, a, "reply", HOUSING, {"result": "已修复"})
    act(app.services, a, "rate", GRID_WORKER, {"rating": "basically_satisfied"})
    act(app.services, a, "verify_pass", GRID_WORKER)
    b = report(app.services).number
    act(app.services, b, "reject", DISPATCHER, {"reason": "重复"})
    clock.advance(timedelta(days=3))
    app.runner.run_due()
    written = _facts(app)
    done = rebuild_facts(app.services)
    assert _facts(app) == written and done.cases == 2 and done.facts == len(written)
    assert done.by_kind["outcome"] == 3 and done.by_kind["rating"] == 1
    real = stats_module.derive_facts
    calls = []

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("crash halfway through the rebuild")
        return real(*args, **kw)

    monkeypatch.setattr(stats_module, "derive_facts", failing)
    with pytest.raises(RuntimeError):
        rebuild_facts(app.services)
    assert _facts(app) == written  # all or nothing


def test_statistics_respect_the_callers_scope(app):
    number = report(app.services).number
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    other = Caller("cd-x", "community_dispatcher", "370602001002")  # another community
    assert sla_stats(app.services, other).units == []
    mine = sla_stats(app.services, Caller("cd-1", "community_dispatcher", COMMUNITY))
    assert {u.unit for u in mine.units} == {COMMUNITY, "dept-housing"}


def test_facts_carry_the_case_area_so_summary_tables_can_keep_figures_per_area(app):
    number = report(app.services).number
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    with app.services.uow(write=False) as uow:
        rows = uow.connection.execute(sa.text(
            "select distinct community_code, street_code, district_code, workflow from case_facts")).all()
    assert [tuple(r) for r in rows] == [(COMMUNITY, "370602001", "370602", "grid_event")]
