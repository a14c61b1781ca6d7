"""Abuse limits: failed authentications and anonymous reports are counted (429 with Retry-After), a caller
holds a bounded number of live streams, API keys expire, revoking is idempotent, and anonymous callers open
cases only of workflows that declare public intake."""

from __future__ import annotations

import gc
import threading
import time
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from gridflow.adapters.orm import CaseRow
from gridflow.api.app import create_app
from gridflow.api.live import open_stream
from gridflow.service.auth import RateLimited, authenticate
from tests.api.helpers import GRID, Api, auth

ATTACKER = ("203.0.113.7", 40000)
NEIGHBOUR = ("198.51.100.9", 40000)


@pytest.fixture
def limited(make_app, db_url):
    def build(**settings) -> Api:
        app = make_app(db_url, **settings)
        return Api(TestClient(create_app(app), client=ATTACKER), app)
    return build


def _from(api: Api, client: tuple[str, int]) -> TestClient:
    return TestClient(api.client.app, client=client)


def _assert_rate_limited(r) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60


def test_wrong_keys_from_one_address_get_429_with_retry_after(limited):
    api = limited(auth_failure_limit="5/minute")
    codes = [api.get(f"wrong-key-{i}", "/me").status_code for i in range(8)]
    assert codes == [401] * 5 + [429] * 3
    _assert_rate_limited(api.get("wrong-key-9", "/me"))
    # Another address is not blocked: its right key works, and so does a verified key's next request.
    assert _from(api, NEIGHBOUR).get("/api/v1/me", headers=auth("demo-community")).status_code == 200


def test_a_right_key_works_until_the_address_exhausts_its_failures(limited):
    api = limited(auth_failure_limit="3/minute")
    for _ in range(2):
        assert api.get("wrong", "/me").status_code == 401
    assert api.get("demo-community", "/me").json()["id"] == "cd-1"  # successes are never counted
    assert api.get("wrong", "/me").status_code == 401
    _assert_rate_limited(api.get("demo-street", "/me"))  # guessing is blocked, right keys too from here


def test_one_wrong_key_from_many_addresses_is_limited_per_credential(limited):
    api = limited(auth_failure_limit="3/minute")
    codes = [_from(api, (f"192.0.2.{i}", 1)).get("/api/v1/me", headers=auth("leaked-old-key")).status_code
             for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]


def test_anonymous_reports_are_limited_per_address(limited):
    api = limited(anonymous_report_limit="3/hour")
    body = {"category": "C0102", "title": "路灯不亮", "unit": GRID}
    codes = [api.client.post("/api/v1/cases", json=body).status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    r = api.client.post("/api/v1/cases", json=body)
    assert r.json()["code"] == "rate_limited" and 1 <= int(r.headers["retry-after"]) <= 3600
    assert _from(api, NEIGHBOUR).post("/api/v1/cases", json=body).status_code == 201
    assert api.client.post("/api/v1/cases", json=body, headers=auth("demo-grid-worker")).status_code == 201


def test_counts_are_shared_through_redis_by_every_api_worker(limited, redis_url, redis_prefix):
    prefix = f"{redis_prefix}-limits-{time.monotonic_ns()}"
    one = limited(redis_url=redis_url, redis_prefix=prefix, auth_failure_limit="4/minute")
    two = Api(TestClient(create_app(one.app), client=ATTACKER), one.app)  # another process's app
    assert [one.get("x", "/me").status_code, two.get("x", "/me").status_code] == [401, 401]
    assert [one.get("x", "/me").status_code, two.get("x", "/me").status_code] == [401, 401]
    _assert_rate_limited(two.get("y", "/me"))
    _assert_rate_limited(one.get("z", "/me"))


def test_unreachable_limit_storage_lets_requests_through(limited):
    api = limited(redis_url="redis://127.0.0.1:1/0", auth_failure_limit="1/minute")
    assert [api.get("wrong", "/me").status_code for _ in range(3)] == [401, 401, 401]
    assert api.get("demo-community", "/me").status_code == 200


# --- live streams ---------------------------------------------------------------------------------

def _stream(api: Api, token: str, out: list) -> threading.Thread:
    def run() -> None:
        out.append(api.client.get("/api/v1/events", params={"limit": 1, "heartbeat": 0.1},
                                  headers=auth(token)))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _wait(predicate, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert predicate()


def test_a_caller_holds_at_most_the_configured_number_of_streams(limited):
    api = limited(sse_streams_per_caller=2)
    hub = api.client.app.state.hub
    done: list = []
    threads = [_stream(api, "demo-community", done) for _ in range(2)]
    _wait(lambda: hub.subscribers == 2)
    refused: list = []
    _stream(api, "demo-community", refused).join(5)  # bounded: without the cap it would stream on
    assert refused, "a third stream was let in"
    _assert_rate_limited(refused[0])
    assert "at most 2" in refused[0].json()["detail"]
    api.report()  # a change both streams see: each ends after its one event, and frees its slot
    for t in threads:
        t.join(15)
    assert [x.status_code for x in done] == [200, 200]
    _wait(lambda: hub.streams_of("user:cd-1") == 0)
    again: list = []
    t = _stream(api, "demo-community", again)
    _wait(lambda: hub.subscribers >= 1)
    api.report()
    t.join(15)
    assert again[0].status_code == 200


def test_a_stream_the_response_never_started_frees_its_slot(limited):
    api = limited(sse_streams_per_caller=1)
    hub = api.client.app.state.hub
    caller = authenticate(api.app.services, "demo-community")
    body = open_stream(hub, api.app.services, caller, cap=1)
    assert hub.streams_of("user:cd-1") == 1
    with pytest.raises(RateLimited):
        open_stream(hub, api.app.services, caller, cap=1)
    del body  # the client went away before the response iterated it
    gc.collect()
    assert hub.streams_of("user:cd-1") == 0
    open_stream(hub, api.app.services, caller, cap=1)


# --- API keys -------------------------------------------------------------------------------------

def _issue(api: Api, **body) -> dict:
    r = api.client.post("/api/v1/api-keys", json={"user_id": "cd-2", **body}, headers=auth("demo-admin"))
    assert r.status_code == 201, r.text
    return r.json()


def test_an_expired_api_key_authenticates_as_nothing(limited, clock):
    api = limited()
    issued = _issue(api, label="tablet", expires_in_days=30)
    expires = datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00"))
    assert expires == clock.now() + timedelta(days=30)
    assert api.get(issued["token"], "/me").json()["id"] == "cd-2"
    clock.advance(days=30, seconds=1)  # verified a moment ago: its cache entry must not outlive the key
    r = api.get(issued["token"], "/me")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert "expired" in r.json()["detail"]
    keys = api.get("demo-admin", "/api-keys", user="cd-2").json()["data"]
    assert any(k["label"] == "tablet" and k["expires_at"] for k in keys)


def test_an_api_key_may_expire_at_a_given_instant_in_the_future_only(limited, clock):
    api = limited()
    at = (clock.now() + timedelta(hours=1)).isoformat()
    token = _issue(api, expires_at=at)["token"]
    assert api.get(token, "/me").status_code == 200
    clock.advance(hours=2)
    api.client.app.state.callers.clear()
    assert "expired" in api.get(token, "/me").json()["detail"]
    past = api.client.post("/api/v1/api-keys", json={"user_id": "cd-2", "expires_at": "2020-01-01T00:00:00Z"},
                           headers=auth("demo-admin"))
    assert past.status_code == 422 and past.json()["code"] == "payload_invalid"
    both = api.client.post("/api/v1/api-keys", headers=auth("demo-admin"),
                           json={"user_id": "cd-2", "expires_at": at, "expires_in_days": 1})
    assert both.status_code == 422
    naive = api.client.post("/api/v1/api-keys", json={"user_id": "cd-2", "expires_at": "2030-01-01T00:00:00"},
                            headers=auth("demo-admin"))
    assert naive.status_code == 422


def _key(api: Api, key_id: int) -> dict:
    keys = api.get("demo-admin", "/api-keys", user="cd-2").json()["data"]
    return next(k for k in keys if k["id"] == key_id)


def test_revoking_a_revoked_key_keeps_the_first_revocation(limited, clock):
    api = limited()
    _issue(api, label="lost phone")
    key_id = next(k["id"] for k in api.get("demo-admin", "/api-keys", user="cd-2").json()["data"]
                  if k["label"] == "lost phone")
    assert api.client.delete(f"/api/v1/api-keys/{key_id}", headers=auth("demo-admin")).status_code == 204
    first = _key(api, key_id)
    clock.advance(hours=5)
    assert api.client.delete(f"/api/v1/api-keys/{key_id}", headers=auth("demo-admin")).status_code == 204
    again = _key(api, key_id)
    assert again["revoked_at"] == first["revoked_at"] is not None


# --- which workflows take anonymous reports -------------------------------------------------------

@pytest.mark.parametrize("workflow", ["special_care_visit", "emergency_incident", "dispute_mediation"])
def test_anonymous_callers_may_not_open_workflows_without_public_intake(limited, workflow):
    api = limited()
    r = api.client.post("/api/v1/cases", json={"workflow": workflow, "title": "x", "unit": GRID})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "intake_not_public" and workflow in r.json()["detail"]
    with api.app.services.uow(write=False) as uow:
        assert uow.session.exec(select(CaseRow)).first() is None  # nothing was opened


@pytest.mark.parametrize("workflow", ["grid_event", "hotline_request"])
def test_anonymous_callers_may_open_workflows_with_public_intake(limited, workflow):
    api = limited()
    r = api.client.post("/api/v1/cases", json={"workflow": workflow, "category": "C0102", "title": "路灯不亮",
                                                 "unit": GRID})
    assert r.status_code == 201, r.text
    assert r.json()["resident_token"]
