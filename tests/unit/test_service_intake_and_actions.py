"""Reporting and acting on cases through the service, on the in-memory store: no database, milliseconds."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gridflow.engine.case import Actor
from gridflow.engine.clock import ManualClock
from gridflow.engine.errors import ActionNotAllowed, VersionConflict
from gridflow.service.actions import IdempotencyConflict, TakeAction, take_action
from gridflow.service.intake import ReportCase, report_case
from gridflow.adapters.ports import GENESIS_HASH
from tests.unit.fakes import FakeStore, fake_services

START = datetime(2026, 9, 30, 0, 0, tzinfo=timezone.utc)
GRID = "37060200100101"
GRID_WORKER = Actor("gw-1", "grid_worker", GRID)
DISPATCHER = Actor("cd-1", "community_dispatcher", "370602001001")
HOUSING = Actor("dh-housing", "department_handler", "dept-housing")


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def svc(store):
    return fake_services(store, ManualClock(START))


def report(svc) -> str:
    return report_case(svc, ReportCase("grid_event", GRID_WORKER, category="C0101",
                                       description="路灯不亮")).number


def dispatch(svc, number: str, **kw):
    return take_action(svc, TakeAction(number, "dispatch", DISPATCHER, {"department": "dept-housing"}, **kw))


def test_a_report_is_filed_under_its_community_numbered_and_opens_a_hash_chained_history(svc, store):
    changes = []
    svc.listeners.append(changes.append)
    result = report_case(svc, ReportCase("grid_event", GRID_WORKER, category="C0101", description="路灯不亮"))
    case = store.case(result.number)
    assert result.number == "GF-2026-000001" and result.version == case.version == 1
    assert case.snapshot.state == result.state == "reported"
    assert case.snapshot.holder_unit == "370602001001" and case.community_code == "370602001001"
    assert (case.street_code, case.district_code) == ("370602001", "370602")
    history = store.history(result.number)
    assert [e.type for e in history] == ["CaseReported", "DeadlineStarted"]
    assert [e.seq for e in history] == [1, 2] and history[0].prev_hash == GENESIS_HASH
    assert history[1].prev_hash == history[0].hash == result.events[0]["hash"]
    assert (case.event_seq, case.last_hash) == (2, history[-1].hash)
    assert {t.kind for t in store.timers(result.number).values()} == {"warning", "breach"}
    assert [c.source for c in changes] == ["report"] and changes[0].community_code == "370602001001"


def test_dispatching_moves_the_case_to_the_department_and_replaces_its_timers(svc, store):
    number = report(svc)
    before = set(store.timers(number))
    result = dispatch(svc, number)
    case = store.case(number)
    assert result.state == case.snapshot.state == "dispatched" and result.version == case.version == 2
    # the community's dispatch is not the department's response: first_response_at waits for its sign-for
    assert case.snapshot.holder_unit == "dept-housing" and case.first_response_at is None
    assert [e.seq for e in store.history(number)] == list(range(1, case.event_seq + 1))
    assert not before & set(store.timers(number))  # the reporting deadline's timers were cancelled


def test_a_refused_action_changes_nothing(svc, store):
    number = report(svc)
    case, history, timers = store.case(number), store.history(number), store.timers(number)
    commits = store.commits
    with pytest.raises(ActionNotAllowed):
        take_action(svc, TakeAction(number, "acknowledge", HOUSING))
    assert store.case(number) == case and store.history(number) == history and store.timers(number) == timers
    assert store.commits == commits


def test_a_stale_expected_version_is_a_conflict(svc, store):
    number = report(svc)
    dispatch(svc, number, expected_version=1)
    with pytest.raises(VersionConflict):
        take_action(svc, TakeAction(number, "acknowledge", HOUSING, expected_version=1))
    assert store.case(number).version == 2


def test_a_case_changed_between_reading_and_writing_is_a_conflict_and_the_loser_writes_nothing(svc, store):
    number = report(svc)
    store.interleave = lambda: dispatch(svc, number)  # another dispatcher commits first
    with pytest.raises(VersionConflict, match="changed while this action was being decided"):
        dispatch(svc, number)
    case = store.case(number)
    assert case.version == 2  # the winner's dispatch only
    assert [e.seq for e in store.history(number)] == list(range(1, case.event_seq + 1))


def test_an_idempotent_request_replayed_answers_as_before_and_writes_nothing(svc, store):
    number = report(svc)
    first = dispatch(svc, number, idempotency_key="k-1")
    case, history = store.case(number), store.history(number)
    again = dispatch(svc, number, idempotency_key="k-1")
    assert again.replayed and (again.state, again.version, again.events) == (first.state, first.version,
                                                                            first.events)
    assert store.case(number) == case and store.history(number) == history
    with pytest.raises(IdempotencyConflict):
        take_action(svc, TakeAction(number, "dispatch", DISPATCHER, {"department": "dept-urban"},
                                    idempotency_key="k-1"))
