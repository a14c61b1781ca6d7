"""Service layer on real SQLite and real PostgreSQL: one action = one transaction."""

from __future__ import annotations

import threading

import pytest

from gridflow.engine.errors import (
    ActionNotAllowed, CaseNotFound, GuardFailed, PayloadInvalid, RoleNotAllowed, VersionConflict,
)
from gridflow.adapters.repository import SqlCaseRepository as CaseRepository
from gridflow.service.actions import IdempotencyConflict
from tests.integration.helpers import (
    DISPATCHER, GRID_WORKER, HOUSING, act, dispatched_case, report, snapshot,
)


def test_reported_case_gets_public_number_history_and_timers(app):
    r = report(app.services)
    assert r.number.startswith("GF-2026-")
    row, events, timers = snapshot(app.services, r.number)
    assert row.state == "reported" and row.version == 1
    assert row.holder_unit == "370602001001" and row.community_code == "370602001001"
    assert row.street_code == "370602001" and row.district_code == "370602"
    assert [e.type for e in events] == ["CaseReported", "DeadlineStarted"]
    assert [e.seq for e in events] == [1, 2]
    assert {t.kind for t in timers} == {"warning", "breach"}


def test_dispatch_moves_case_to_department_and_swaps_timers(app):
    number = dispatched_case(app.services)
    row, events, timers = snapshot(app.services, number)
    assert row.state == "dispatched" and row.holder_unit == "dept-housing" and row.version == 2
    # signing for, and the handling limit (counted from dispatch)
    assert {t.deadline_id.split(".")[0] for t in timers} == {"acknowledge", "handle"}
    assert ",department_handler," in row.holder_roles


@pytest.mark.parametrize("action,actor,payload,error", [
    ("verify_pass", DISPATCHER, {}, ActionNotAllowed),
    ("acknowledge", GRID_WORKER, {}, ActionNotAllowed),
    ("reject", HOUSING, {"reason": "x"}, RoleNotAllowed),
    ("reject", DISPATCHER, {}, PayloadInvalid),
    ("dispatch", DISPATCHER, {"department": "dept-housing", "colour": "red"}, PayloadInvalid),
    ("merge", DISPATCHER, {"duplicate_of": "SELF"}, GuardFailed),
])
def test_refused_action_changes_nothing(app, action, actor, payload, error):
    r = report(app.services)
    if payload.get("duplicate_of") == "SELF":
        payload = {"duplicate_of": r.number}
    before = snapshot(app.services, r.number)
    with pytest.raises(error) as exc:
        act(app.services, r.number, action, actor, payload)
    assert exc.value.code
    after = snapshot(app.services, r.number)
    assert after[0].version == before[0].version and after[0].state == before[0].state
    assert [e.hash for e in after[1]] == [e.hash for e in before[1]]
    assert [t.key for t in after[2]] == [t.key for t in before[2]]


def test_action_not_allowed_lists_the_allowed_actions(app):
    r = report(app.services)
    with pytest.raises(ActionNotAllowed) as exc:
        act(app.services, r.number, "acknowledge", DISPATCHER)
    assert "dispatch" in exc.value.details["allowed"] and "reject" in exc.value.details["allowed"]


def test_unknown_case_is_a_clear_error(app):
    with pytest.raises(CaseNotFound):
        act(app.services, "GF-2026-999999", "dispatch", DISPATCHER, {"department": "dept-housing"})


def test_crash_between_writes_leaves_the_case_exactly_as_before(app, monkeypatch):
    r = report(app.services)
    before = snapshot(app.services, r.number)

    def boom(*_a, **_k):
        raise RuntimeError("power cut after the events were appended")

    monkeypatch.setattr(CaseRepository, "schedule", boom)
    with pytest.raises(RuntimeError):
        act(app.services, r.number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    monkeypatch.undo()
    after = snapshot(app.services, r.number)
    assert (after[0].state, after[0].version, after[0].event_seq) == (before[0].state, before[0].version,
                                                                      before[0].event_seq)
    assert len(after[1]) == len(before[1]) and [t.key for t in after[2]] == [t.key for t in before[2]]
    # and the case still works normally afterwards
    assert act(app.services, r.number, "dispatch", DISPATCHER,
               {"department": "dept-housing"}).state == "dispatched"


def test_stale_expected_version_is_a_conflict(app):
    r = report(app.services)
    act(app.services, r.number, "dispatch", DISPATCHER, {"department": "dept-housing"}, expected_version=1)
    with pytest.raises(VersionConflict):
        act(app.services, r.number, "acknowledge", HOUSING, expected_version=1)


def test_two_concurrent_actions_on_one_case_exactly_one_wins(app):
    """Real threads, real database: no lost update, no duplicated sequence number."""
    number = dispatched_case(app.services)
    version = snapshot(app.services, number)[0].version
    barrier = threading.Barrier(2)
    results: list[object] = []

    def worker(action, payload):
        barrier.wait()
        try:
            results.append(act(app.services, number, action, HOUSING, payload, expected_version=version))
        except (VersionConflict, ActionNotAllowed) as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker, args=("acknowledge", {})),
               threading.Thread(target=worker, args=("return_case", {"reason_code": "not_our_duty",
                                                                         "reason": "不属于本部门"}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1 and len(losses) == 1
    assert isinstance(losses[0], VersionConflict)
    row, events, _ = snapshot(app.services, number)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert row.version == version + 1 and row.state == wins[0].state


def test_many_threads_without_versions_serialise_without_losing_updates(app):
    """Supervisors pressing 督办 at once: every accepted action lands once, sequence stays dense."""
    number = dispatched_case(app.services)
    from gridflow.engine.case import Actor
    sup = Actor("sv-1", "supervisor", "370602")
    outcomes: list[object] = []
    barrier = threading.Barrier(6)

    def worker(i):
        barrier.wait()
        try:
            outcomes.append(act(app.services, number, "supervise", sup, {"instructions": f"第{i}次督办"}))
        except VersionConflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [o for o in outcomes if not isinstance(o, Exception)]
    row, events, _ = snapshot(app.services, number)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    taken = [e for e in events if e.type == "ActionTaken" and e.data["action"] == "supervise"]
    assert len(taken) == len(ok) >= 1
    assert row.version == 2 + len(ok)


def test_idempotency_key_returns_the_first_result_instead_of_acting_twice(app):
    number = dispatched_case(app.services)
    first = act(app.services, number, "acknowledge", HOUSING, idempotency_key="app-retry-1")
    again = act(app.services, number, "acknowledge", HOUSING, idempotency_key="app-retry-1")
    assert again.replayed and (again.state, again.version) == (first.state, first.version)
    row, events, _ = snapshot(app.services, number)
    assert sum(1 for e in events if e.type == "ActionTaken" and e.data["action"] == "acknowledge") == 1
    with pytest.raises(IdempotencyConflict):
        act(app.services, number, "request_suspension", HOUSING,
            {"reason_code": "other", "reason": "x", "duration": "1wd"}, idempotency_key="app-retry-1")


def test_concurrent_retries_with_one_idempotency_key_act_once(app):
    number = dispatched_case(app.services)
    barrier = threading.Barrier(4)
    results = []

    def worker():
        barrier.wait()
        try:
            results.append(act(app.services, number, "acknowledge", HOUSING, idempotency_key="hotline-77"))
        except (VersionConflict, ActionNotAllowed) as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, events, _ = snapshot(app.services, number)
    assert sum(1 for e in events if e.type == "ActionTaken" and e.data["action"] == "acknowledge") == 1
    assert any(not isinstance(r, Exception) for r in results)


def test_report_with_unknown_unit_is_refused_before_anything_is_written(app):
    with app.services.uow(write=False) as uow:
        from sqlmodel import func, select
        from gridflow.adapters.orm import CaseRow
        before = uow.session.exec(select(func.count()).select_from(CaseRow)).one()
    with pytest.raises(PayloadInvalid):
        report(app.services, unit="no-such-grid", reporter=GRID_WORKER.__class__("x", "grid_worker", None))
    with app.services.uow(write=False) as uow:
        assert uow.session.exec(select(func.count()).select_from(CaseRow)).one() == before


def test_report_located_by_coordinates_lands_in_the_right_grid(app):
    from gridflow.engine.case import Actor
    from gridflow.demo.seed import grid_center
    lat, lon = grid_center("37060200200102")
    r = report(app.services, reporter=Actor("op-1", "hotline_operator", "370602"), lat=lat, lon=lon,
               reporter_name="张三", reporter_phone="13800000000")
    row, _, _ = snapshot(app.services, r.number)
    assert row.origin_unit == "37060200200102" and row.holder_unit == "370602002001"
    assert r.resident_token  # the caller can follow the case with it


def test_locked_sqlite_database_gets_a_clear_error_and_nothing_changes(make_app, sqlite_url):
    import sqlite3

    from gridflow.engine.errors import StoreUnavailable

    app = make_app(sqlite_url, sqlite_busy_timeout=0.2)
    r = report(app.services)
    path = sqlite_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(StoreUnavailable) as exc:
            act(app.services, r.number, "dispatch", DISPATCHER, {"department": "dept-housing"})
        assert exc.value.status == 503 and exc.value.details.get("retry_after")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert snapshot(app.services, r.number)[0].state == "reported"
    assert act(app.services, r.number, "dispatch", DISPATCHER,
               {"department": "dept-housing"}).state == "dispatched"


def test_a_value_postgresql_refuses_is_data_refused_and_nothing_is_filed(app):
    from gridflow.engine.errors import DataRefused, StoreError

    if app.services.db.dialect == "sqlite":  # SQLite keeps what it is given: no column lengths
        assert report(app.services, title="长" * 201).number
        return
    with pytest.raises(DataRefused) as exc:
        report(app.services, title="长" * 201)  # the title column holds 200 characters
    assert isinstance(exc.value, StoreError)
    assert exc.value.status == 422 and exc.value.code == "request_invalid"
    assert exc.value.cause and "details" not in exc.value.details
    assert report(app.services).number  # the transaction was rolled back cleanly


def test_a_reused_api_key_is_already_exists_not_a_database_error(app):
    from gridflow.service.admin import AlreadyExists, issue_api_key

    issue_api_key(app.services, "gw-1", token="gf_same")
    with pytest.raises(AlreadyExists):
        issue_api_key(app.services, "gw-1", token="gf_same")


def test_a_statement_failing_on_a_dead_connection_is_store_unavailable(app, monkeypatch):
    from gridflow.adapters import repository
    from gridflow.engine.errors import StoreUnavailable

    r = report(app.services)
    dbapi = app.services.db.write_engine.dialect.loaded_dbapi

    def unplugged(*_a, **_k):
        raise dbapi.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(repository._Prepared, "params", unplugged)
    with pytest.raises(StoreUnavailable) as exc:
        act(app.services, r.number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    assert exc.value.details == {"retry_after": 1} and "server closed the connection" in exc.value.message
    monkeypatch.undo()
    assert snapshot(app.services, r.number)[0].state == "reported"
