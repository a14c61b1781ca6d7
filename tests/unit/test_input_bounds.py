"""Free-form input is bounded where it is defined once: ``engine.payload`` (depth, values, size, what an
attachment is) for every entry point, and the write guard in ``service.recording`` for every writer."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gridflow.engine.case import Actor, Event
from gridflow.engine.errors import PayloadInvalid
from gridflow.engine.payload import (
    EVENT_BOUNDS, MAX_ATTACHMENTS, PAYLOAD_BOUNDS, JsonBounds, clean_attachments, json_problem,
    validate_payload,
)
from gridflow.service.actions import TakeAction, take_action
from gridflow.service.intake import ReportCase, report_case
from gridflow.service.recording import apply_decision
from gridflow.engine.clock import ManualClock
from tests.unit.fakes import FakeStore, fake_services

START = datetime(2026, 9, 30, 0, 0, tzinfo=timezone.utc)
GRID = "37060200100101"
GRID_WORKER = Actor("gw-1", "grid_worker", GRID)
SUPERVISOR = Actor("sup-1", "supervisor", "370602")


def nested(depth: int, leaf: object = "x") -> object:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


# --- measuring JSON --------------------------------------------------------------------------------

def test_plain_json_within_bounds_passes():
    assert json_problem({"a": [1, 2.5, True, None, "文本", {"b": []}]}, PAYLOAD_BOUNDS) is None


def test_json_nested_deeper_than_its_bounds_is_named_where_it_goes_too_deep():
    field, message = json_problem({"attachments": [nested(10)]}, PAYLOAD_BOUNDS)
    assert field.startswith("attachments[0].a") and "deeper than 6" in message


def test_measuring_a_hostile_nesting_never_exhausts_the_stack():
    deep = nested(200_000)
    assert "deeper" in json_problem(deep, EVENT_BOUNDS)[1]


def test_json_with_too_many_values_or_too_much_text_is_refused():
    assert "more than 10 values" in json_problem(list(range(20)), JsonBounds(5, 10, 10_000))[1]
    assert "larger than 100 characters" in json_problem({"a": "x" * 200}, JsonBounds(5, 10, 100))[1]


@pytest.mark.parametrize("value, words", [
    (float("nan"), "finite"), (float("inf"), "finite"), ("\ud800", "not valid Unicode"),
    (2**70, "too large"), ({1: "a"}, "key that is not text"), ({"\udc00": 1}, "not valid Unicode"),
    ({"a"}, "not JSON data"),
    (datetime(2026, 1, 1), "not JSON data"),
])
def test_values_that_could_not_be_stored_and_read_back_as_json_are_refused(value, words):
    assert words in json_problem({"field": value}, PAYLOAD_BOUNDS)[1]


# --- attachments --------------------------------------------------------------------------------

def test_an_attachment_is_its_metadata_and_nothing_else():
    given = [{"name": "照片.jpg", "size": 1024, "url": None, "content_type": "image/jpeg"}]
    assert clean_attachments(given) == [{"name": "照片.jpg", "size": 1024, "content_type": "image/jpeg"}]
    with pytest.raises(PayloadInvalid) as refused:
        clean_attachments([{"name": "a.jpg", "a": {"a": 1}}, {"size": -1}, "x"])
    assert set(refused.value.details["fields"]) == {
        "attachments[0].a", "attachments[1].name", "attachments[1].size", "attachments[2]"}


def test_attachments_are_counted_and_their_text_bounded():
    with pytest.raises(PayloadInvalid) as refused:
        clean_attachments([{"name": "a"}] * (MAX_ATTACHMENTS + 1))
    assert "more than 20" in refused.value.details["fields"]["attachments"]
    with pytest.raises(PayloadInvalid) as refused:
        clean_attachments([{"name": "a" * 201, "content_type": "image/\x00jpeg"}])
    assert set(refused.value.details["fields"]) == {"attachments[0].name", "attachments[0].content_type"}


def test_an_action_payload_takes_attachments_of_the_declared_shape_only(grid_event):
    supervise = grid_event.actions["supervise"]
    clean = validate_payload(supervise, {"instructions": "请尽快", "attachments": [{"name": "a.jpg"}]})
    assert clean["attachments"] == [{"name": "a.jpg"}]
    with pytest.raises(PayloadInvalid) as refused:
        validate_payload(supervise, {"instructions": "x", "attachments": [nested(300)]})
    assert "deeper than 6" in refused.value.message and refused.value.details["fields"]
    with pytest.raises(PayloadInvalid) as refused:
        validate_payload(supervise, {"instructions": "x", "attachments": [{"name": "a", "b": 1}]})
    assert list(refused.value.details["fields"]) == ["attachments[0].b"]


def test_a_deep_value_in_a_declared_field_is_refused_before_any_check_reads_it(shipped):
    dispatch = shipped["grid_event"].actions["dispatch"]
    with pytest.raises(PayloadInvalid) as refused:
        validate_payload(dispatch, {"department": nested(5000)})
    assert "deeper" in refused.value.message


def test_numbers_in_a_payload_are_finite_and_exact(shipped):
    action = next(a for a in shipped["emergency_incident"].actions.values()
                  if any(f.name == "casualties" for f in a.fields))
    for bad in (2**60, float("nan")):
        with pytest.raises(PayloadInvalid) as refused:
            required = {f.name: "x" for f in action.fields if f.required and f.type == "text"}
            validate_payload(action, {**required, "casualties": bad})
        assert "casualties" in refused.value.details["fields"]


# --- the service: every channel, every writer ---------------------------------------------------

@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def svc(store):
    return fake_services(store, ManualClock(START))


def test_a_report_from_any_channel_takes_attachments_of_the_declared_shape_only(svc, store):
    with pytest.raises(PayloadInvalid) as refused:
        report_case(svc, ReportCase("grid_event", GRID_WORKER, category="C0101", title="井盖",
                                    channel="hotline",
                                    attachments=({"name": "录音.mp3", "transcript": nested(300)},)))
    assert "attachments[0].transcript" in refused.value.details["fields"]
    with pytest.raises(PayloadInvalid):
        report_case(svc, ReportCase("grid_event", GRID_WORKER, category="C0101", title="井盖",
                                    data={"x": nested(50)}))
    number = report_case(svc, ReportCase("grid_event", GRID_WORKER, category="C0101", title="井盖",
                                         attachments=({"name": "a.jpg", "url": None},))).number
    assert number == "GF-2026-000001"  # the refused reports filed nothing


def test_the_write_guard_refuses_an_event_that_could_not_be_read_back_and_changes_nothing(svc, store):
    number = report_case(svc, ReportCase("grid_event", GRID_WORKER, category="C0101", title="井盖")).number
    events = len(store.history(number))
    for bad in ({"note": nested(40)}, {"ratio": float("nan")}, {"text": "\udfff"}, {"blob": "x" * 600_000}):
        with pytest.raises(PayloadInvalid) as refused, svc.uow() as uow:
            case = uow.cases.load(number)
            engine = svc.catalog.engine(case.snapshot.workflow, case.snapshot.version)
            decision = engine.act(case.snapshot, "supervise", SUPERVISOR, {"instructions": "x"}, START)
            apply_decision(svc, uow, case, decision, [Event("Noted", START, "system", "system", bad)])
            uow.commit()
        assert "nothing was changed" in refused.value.message
        assert store.case(number).version == 1 and len(store.history(number)) == events
    result = take_action(svc, TakeAction(number, "supervise", SUPERVISOR, {"instructions": "x"}))
    assert result.version == 2
