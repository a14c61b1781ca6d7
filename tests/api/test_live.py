"""Live events, health, metrics and the shape of errors."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gridflow.engine.errors import StoreUnavailable
from tests.api.helpers import GRID, auth

SHENGLI_GRID = "37060200100201"  # 胜利社区第1网格: cd-2's community


def _listen(api, token: str, limit: int, out: dict) -> threading.Thread:
    def run() -> None:
        r = api.client.get("/api/v1/events", params={"limit": limit, "heartbeat": 0.2}, headers=auth(token))
        out[token] = r

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _events(response) -> list[dict]:
    out = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines()
                     if ": " in line and not line.startswith(":"))
        if lines.get("event") == "case":
            out.append(json.loads(lines["data"]))
    return out


def test_event_stream_sends_each_caller_only_the_changes_it_may_see(api):
    hub = api.client.app.state.hub
    got: dict = {}
    threads = [_listen(api, "demo-community", 2, got), _listen(api, "demo-community-2", 1, got),
               _listen(api, "demo-supervisor", 3, got)]
    deadline = time.monotonic() + 10
    while hub.subscribers < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hub.subscribers == 3
    ours = api.report(reporter={"name": "李明", "phone": "13812345678"},
                      description="电话13812345678")["number"]
    api.ok("demo-community", ours, "reject", {"reason": "请拨打13812345678联系"})
    theirs = api.report(unit=SHENGLI_GRID)["number"]
    for t in threads:
        t.join(15)
    community = _events(got["demo-community"])
    assert [(e["number"], e["source"]) for e in community] == [(ours, "report"), (ours, "action")]
    assert community[1]["state"] == "rejected" and community[1]["version"] == 2
    assert "13812345678" in json.dumps(community[1]["events"], ensure_ascii=False)  # the community calls back
    assert [e["number"] for e in _events(got["demo-community-2"])] == [theirs]
    supervisor = _events(got["demo-supervisor"])
    assert [e["number"] for e in supervisor] == [ours, ours, theirs]
    assert "13812345678" not in json.dumps(supervisor, ensure_ascii=False)
    assert got["demo-community"].headers["content-type"].startswith("text/event-stream")
    assert hub.subscribers == 0


def test_timer_firings_reach_the_stream(api, clock):
    hub = api.client.app.state.hub
    got: dict = {}
    number = api.report()["number"]
    t = _listen(api, "demo-community", 1, got)
    while hub.subscribers < 1:
        time.sleep(0.02)
    clock.advance(hours=3, minutes=30)
    api.app.runner.run_due()
    t.join(15)
    (event,) = _events(got["demo-community"])
    assert event["number"] == number and event["source"] == "timer"
    assert [e["type"] for e in event["events"]] == ["DeadlineWarned"]


def test_healthz_reports_database_and_runner(api):
    r = api.client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["runner"]["kind"] == "inline" and body["timers"] == {"pending": 0, "due": 0, "lag_s": 0.0}


def test_healthz_is_503_when_the_database_does_not_answer(api, monkeypatch):
    monkeypatch.setattr(api.app.services.db, "ping", lambda: False)
    r = api.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable" and r.json()["database"] == "unavailable"


def test_metrics_count_actions_breaches_escalations_and_request_latency(api, clock):
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    clock.advance(days=10)  # the National Day week and more: acknowledgement long overdue
    api.app.runner.run_due()
    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert ('gridflow_actions_total{action="dispatch",role="community_dispatcher",workflow="grid_event"} 1.0'
            in text)
    assert 'gridflow_deadline_breaches_total{timer="acknowledge",workflow="grid_event"}' in text
    assert 'gridflow_escalations_total{to_level="street",workflow="grid_event"} 1.0' in text
    assert "gridflow_timer_lateness_seconds_bucket" in text
    assert "gridflow_timer_lag_seconds 0.0" in text and "gridflow_timers_pending" in text
    assert ('gridflow_http_request_duration_seconds_count{method="POST",'
            'route="/api/v1/cases/{number}/actions/{action}",status="200"} 1.0') in text


def test_timer_lag_shows_due_timers_nobody_fired(api, clock):
    api.report()
    clock.advance(days=1)
    lag = [line for line in api.client.get("/metrics").text.splitlines()
           if line.startswith("gridflow_timer_lag")]
    assert lag and float(lag[0].split()[-1]) > 3600


def test_database_outage_is_503_problem_with_retry_after(api, monkeypatch):
    def down(*args, **kwargs):
        raise StoreUnavailable("database unavailable or locked, nothing was changed", retry_after=2)

    monkeypatch.setattr("gridflow.service.lists.list_cases", down)
    r = api.get("demo-admin", "/cases")
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "database_unavailable"


@pytest.mark.parametrize("method, path, status, code", [
    ("GET", "/api/v1/nowhere", 404, "not_found"),
    ("DELETE", "/api/v1/cases", 405, "method_not_allowed"),
    ("GET", "/api/v1/cases?limit=1000", 422, "request_invalid"),
    ("GET", "/api/v1/workflows/no_such_flow", 404, "not_found"),
    ("POST", "/api/v1/cases", 422, "request_invalid"),
])
def test_errors_everywhere_are_problem_json_with_a_stable_code(api, method, path, status, code):
    body = {"unit": GRID, "surprise": 1} if method == "POST" else None
    r = api.client.request(method, path, json=body, headers=auth("demo-admin"))
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == code and problem["status"] == status
    assert problem["type"] == f"urn:gridflow:problem:{code}" and problem["title"] and problem["detail"]


def test_unexpected_errors_are_500_problems_without_internals(api, monkeypatch):
    from fastapi.testclient import TestClient

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("gridflow.service.lists.worklist", broken)
    client = TestClient(api.client.app, raise_server_exceptions=False)
    r = client.get("/api/v1/worklist", headers=auth("demo-admin"))
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert "secret" not in r.text


def test_workflow_definition_is_served_and_the_console_asks_to_sign_in(api):
    wf = api.client.get("/api/v1/workflows/grid_event").json()
    assert wf["initial"] == "reported" and wf["escalation"] == ["community", "street", "district", "city"]
    dispatch = next(a for a in wf["actions"] if a["name"] == "dispatch")
    assert dispatch["label"] == {"zh": "派遣", "en": "Dispatch"} and dispatch["fields"][0]["type"] == "unit"
    assert "name: grid_event" in wf["source_yaml"]
    page = api.client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/signin"
    assert 'action="/signin"' in api.client.get("/signin").text
