"""Bounded input everywhere, and never a 500 for bad input — on real SQLite and real PostgreSQL.

One test per way a caller could once break a case or the server: a nested attachment that left a case's
history unreadable for good, bodies of any size, NaN, dates no calendar has; then a property test that
throws random JSON at actions and random text at date parameters and asks only that nothing answers
5xx and history stays readable.
"""

from __future__ import annotations

import json
from datetime import date, datetime

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings, strategies as st

from gridflow.api.app import create_app
from tests.api.helpers import GRID, Api, auth

#: Everyone who can see a case reported in GRID: its history must answer 200 for each of them.
READERS = ("demo-supervisor", "demo-community", "demo-street", "demo-grid-worker", "demo-admin")
JSON_HEADERS = {"content-type": "application/json"}


def nested(depth: int, leaf: object = "x") -> object:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def post_raw(api: Api, token: str, path: str, body: bytes | str, **headers: str):
    return api.client.post(f"/api/v1{path}", content=body, headers={**auth(token), **JSON_HEADERS, **headers})


def assert_problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == code, body
    return body


def assert_readable(api: Api, number: str, version: int, readers: tuple[str, ...] = READERS) -> None:
    for token in readers:
        history = api.get(token, f"/cases/{number}/history")
        assert history.status_code == 200, (token, history.text[:300])
        case = api.get(token, f"/cases/{number}")
        assert case.status_code == 200, (token, case.text[:300])
        assert case.json()["version"] == version


# --- 1. the body limit ------------------------------------------------------------------------

def test_a_body_over_the_limit_is_refused_with_413_before_it_is_parsed(api):
    not_even_json = b"{" * (2 * 1024 * 1024)  # would be a 400/422 if anything had parsed it
    r = post_raw(api, "demo-grid-worker", "/cases", not_even_json)
    body = assert_problem(r, 413, "payload_too_large")
    assert body["limit"] == 1024 * 1024 and body["instance"] == "/api/v1/cases"
    twenty = json.dumps({"title": "x", "unit": GRID, "description": "漏" * (7 * 1024 * 1024)})
    assert_problem(post_raw(api, "demo-grid-worker", "/cases", twenty), 413, "payload_too_large")


def test_a_chunked_body_is_counted_as_it_streams_and_refused_past_the_limit(api):
    number = api.report()["number"]
    sent = []

    def chunks():
        for _ in range(64):  # 4 MiB in 64 KiB chunks, no Content-Length
            sent.append(1)
            yield b" " * 65536

    r = api.client.post(f"/api/v1/cases/{number}/actions/supervise", content=chunks(),
                        headers={**auth("demo-supervisor"), **JSON_HEADERS})
    assert_problem(r, 413, "payload_too_large")
    assert_readable(api, number, 1)


def test_the_body_limit_is_a_setting(make_app, sqlite_url):
    api = Api(TestClient(create_app(make_app(sqlite_url, max_body_bytes=4096))), None)
    small = json.dumps({"category": "C0102", "title": "x" * 100, "unit": GRID})
    assert post_raw(api, "demo-grid-worker", "/cases", small).status_code == 201
    big = json.dumps({"title": "x", "unit": GRID, "description": "x" * 5000})
    assert assert_problem(post_raw(api, "demo-grid-worker", "/cases", big), 413,
                          "payload_too_large")["limit"] == 4096


def test_a_route_prefix_can_have_a_larger_body_limit_than_the_default():
    from gridflow.api.limits import BodyLimit

    limits = BodyLimit(lambda *a: None, max_bytes=1024, routes={"/api/v1/imports/": 10**7,
                                                                "/api/v1/imports/small/": 10})
    assert limits.limit_for("/api/v1/cases") == 1024
    assert limits.limit_for("/api/v1/imports/hotline") == 10**7
    assert limits.limit_for("/api/v1/imports/small/x") == 10  # the longest prefix decides


# --- 2. free-form JSON fields and attachments ---------------------------------------------------

def test_a_nested_attachment_is_refused_and_the_case_stays_readable_for_every_role(api):
    """The issue's reproduction: 300 levels left history answering 500 for good; 600 levels answered 500
    after committing the action (so a retry repeated it)."""
    number = api.report()["number"]
    for depth in (300, 600):
        payload = {"instructions": "x", "attachments": [nested(depth)]}
        r = api.act("demo-supervisor", number, "supervise", payload)
        body = assert_problem(r, 422, "request_invalid")
        assert "attachments[0]" in body["detail"] and "deeper" in body["detail"]
    community = api.act("demo-community", number, "handle_locally",
                        {"result": "已处理", "attachments": [nested(300)]})
    assert community.status_code == 422
    assert_readable(api, number, 1)


def test_an_action_takes_attachments_of_the_declared_metadata_shape_only(api):
    number = api.report()["number"]
    extra = api.act("demo-supervisor", number, "supervise",
                    {"instructions": "x", "attachments": [{"name": "a.jpg", "exif": {"gps": [1, 2]}}]})
    assert assert_problem(extra, 422, "payload_invalid")["fields"] == {
        "attachments[0].exif": "is not an attachment member (known: name, url, content_type, size)"}
    many = api.act("demo-supervisor", number, "supervise",
                   {"instructions": "x", "attachments": [{"name": f"{i}.jpg"} for i in range(21)]})
    assert "attachments" in assert_problem(many, 422, "payload_invalid")["fields"]
    megabyte = api.act("demo-supervisor", number, "supervise",
                       {"instructions": "x", "attachments": [{"name": "n" * 40_000} for _ in range(20)]})
    assert megabyte.status_code == 422
    assert_readable(api, number, 1)
    ok = api.ok("demo-supervisor", number, "supervise", {"instructions": "x", "attachments": [
        {"name": "现场照片.jpg", "url": "https://files.example/1.jpg", "content_type": "image/jpeg",
         "size": 2048}]})
    assert ok["version"] == 2
    history = api.get("demo-supervisor", f"/cases/{number}/history").json()["data"]
    taken = next(e for e in history if e["type"] == "ActionTaken")
    assert taken["data"]["payload"]["attachments"][0]["name"] == "现场照片.jpg"


def test_a_report_takes_attachments_of_the_declared_metadata_shape_only(api):
    r = api.client.post("/api/v1/cases", headers=auth("demo-grid-worker"), json={
        "title": "x", "unit": GRID, "attachments": [{"name": "a.jpg", "a": nested(50)}]})
    assert_problem(r, 422, "request_invalid")


def test_not_a_number_in_a_payload_is_refused_and_history_stays_readable(api):
    number = api.report()["number"]
    for raw in ('{"instructions": "x", "attachments": [{"name": "a", "size": NaN}]}',
                '{"instructions": "x", "comment": "y", "extra": Infinity}',
                '{"instructions": "\\ud800"}'):
        r = post_raw(api, "demo-supervisor", f"/cases/{number}/actions/supervise", raw)
        assert 400 <= r.status_code < 500, r.text
    assert_readable(api, number, 1)


# --- 4. dates ---------------------------------------------------------------------------------

def test_dates_are_real_iso_dates_in_a_sane_range(api):
    for params, field in (({"from": "0001-01-01"}, "from"), ({"to": "9999-12-31"}, "to"),
                          ({"to": "0"}, "to"), ({"from": "0.5"}, "from"), ({"from": "2026-02-30"}, "from"),
                          ({"from": "20261001"}, "from")):
        body = assert_problem(api.get("demo-supervisor", "/stats/sla", **params), 422, "request_invalid")
        assert body["errors"][0]["loc"] == ["query", field], body
    reversed_ = api.get("demo-supervisor", "/stats/sla", **{"from": "2026-10-02", "to": "2026-10-01"})
    assert_problem(reversed_, 422, "request_invalid")
    month = api.get("demo-supervisor", "/stats/sla", **{"from": "2026-10-01", "to": "2026-10-31"})
    assert month.status_code == 200

    for params, field in (({"reported_to": "0.5"}, "reported_to"), ({"reported_to": "0"}, "reported_to"),
                          ({"reported_from": "0001-01-01T00:00:00"}, "reported_from"),
                          ({"reported_from": "9999-12-31T23:59:59+00:00"}, "reported_from")):
        for path in ("/cases", "/exports/cases"):
            body = assert_problem(api.get("demo-supervisor", path, **params), 422, "request_invalid")
            assert body["errors"][0]["loc"] == ["query", field], body
    backwards = api.get("demo-supervisor", "/cases", reported_from="2026-10-02", reported_to="2026-10-01")
    assert "reported_to" in assert_problem(backwards, 422, "request_invalid")["fields"]
    number = api.report()["number"]
    listed = api.get("demo-supervisor", "/cases", reported_from="2026-09-30T07:00:00+08:00",
                     reported_to="2026-10-01")
    assert [c["number"] for c in listed.json()["data"]] == [number]


# --- 5. no 5xx, whatever comes in -------------------------------------------------------------

_scalars = (st.none() | st.booleans() | st.integers(min_value=-2**80, max_value=2**80)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)
_deep = (st.integers(min_value=1, max_value=20) | st.integers(min_value=200, max_value=800)).map(nested)
_objects = st.dictionaries(st.sampled_from(["name", "url", "size", "a"]) | st.text(max_size=8),
                           _json | _deep, max_size=4)
_text = st.text(min_size=1, max_size=50)
#: Each action with its declared fields filled in (so the payload gets past them to what it carries
#: besides), plus attachments and comments every action takes, plus anything at all.
_ACTIONS = {("demo-supervisor", "supervise"): {}, ("demo-community", "handle_locally"): {"result": _text},
            ("demo-community", "dispatch"): {"department": st.sampled_from(["dept-housing", "dept-urban"])},
            ("demo-community", "reject"): {"reason": _text}}


def _payload_for(who):
    declared = st.fixed_dictionaries({**_ACTIONS[who], "attachments": st.lists(
        _objects | _deep, min_size=1, max_size=3) | _json}, optional={
        "comment": st.text(max_size=50), "instructions": _text | _json})
    anything = st.dictionaries(st.text(max_size=10), _json | _deep, max_size=4)
    return st.tuples(st.just(who), declared | anything)


_calls = st.sampled_from(list(_ACTIONS)).flatmap(_payload_for)
#: Any date, and the first and last days of the calendar, where time zone conversions overflow.
_dates = st.dates() | st.dates(max_value=date(1, 1, 3)) | st.dates(min_value=date(9999, 12, 29))
_date_text = (_dates.map(date.isoformat) | st.datetimes().map(datetime.isoformat)
              | st.datetimes(timezones=st.timezones()).map(datetime.isoformat)
              | st.floats().map(str) | st.integers().map(str) | st.text(max_size=25)
              | st.from_regex(r"\A-?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9:.+Z-]{0,15})?\Z"))


RANDOM = settings(max_examples=40, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@RANDOM
@given(call=_calls)
@example(call=(("demo-supervisor", "supervise"), {"instructions": "x", "attachments": [nested(300)]}))
@example(call=(("demo-community", "handle_locally"),
               {"result": "x", "attachments": [{"name": "a", "size": float("nan")}]}))
def test_no_action_payload_answers_5xx_and_history_stays_readable(api, call):
    (token, action), payload = call
    number = api.report()["number"]
    r = post_raw(api, token, f"/cases/{number}/actions/{action}", json.dumps(payload, allow_nan=True))
    assert r.status_code < 500, r.text
    assert_readable(api, number, 2 if r.status_code == 200 else 1, ("demo-supervisor", "demo-community"))


@RANDOM
@given(values=st.dictionaries(st.sampled_from(["from", "to"]), _date_text, min_size=1),
       listed=st.dictionaries(st.sampled_from(["reported_from", "reported_to"]), _date_text, min_size=1))
@example(values={"from": "0001-01-01"}, listed={"reported_to": "0.5"})
@example(values={"to": "9999-12-31"}, listed={"reported_from": "9999-12-31T23:59:59-12:00"})
def test_no_date_parameter_answers_5xx(api, values, listed):
    assert api.get("demo-supervisor", "/stats/sla", **values).status_code < 500
    assert api.get("demo-supervisor", "/cases", **listed).status_code < 500
    assert api.get("demo-supervisor", "/exports/cases", **listed).status_code < 500
