"""Signed webhooks in: other systems post cases to ``POST /api/v1/intake/{source}`` (Standard Webhooks
signatures, one secret per source); bad, missing, stale or future signatures are refused with 401
problem+json and logged without the secret or the body; the same delivery id files one case."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from gridflow.engine.signing import signed_headers
from tests.api.helpers import GRID, auth

PHONE = "13912345678"
CASE = {"category": "C0101", "title": "井盖位移", "description": "传感器报警：井盖位移", "unit": GRID,
        "reporter": {"name": "张三", "phone": PHONE}}


def _source(api, name="sensor-platform", **body) -> dict:
    body = {"name": name, "reporter_id": "sensor-platform", "role": "grid_worker", "unit": GRID, **body}
    r = api.client.post("/api/v1/admin/intake-sources", json=body, headers=auth("demo-admin"))
    assert r.status_code == 201, r.text
    return r.json()


def _post(api, secret: str, delivery: str, body: dict | bytes = CASE, *, at: datetime | None = None,
          source: str = "sensor-platform", headers: dict | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    signed = signed_headers(secret, delivery, at or datetime.now(timezone.utc), raw)
    return api.client.post(f"/api/v1/intake/{source}", content=raw,
                           headers={"Content-Type": "application/json", **signed, **(headers or {})})


def _count_cases(api) -> int:
    with api.app.services.db.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()


def test_a_signed_delivery_files_a_case_on_the_sources_channel_as_its_reporter(api):
    secret = _source(api, channel="sensor")["secret"]
    assert secret.startswith("whsec_")
    r = _post(api, secret, "evt-1")
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["replayed"] is False and filed["number"].startswith("GF-")
    case = api.get("demo-admin", f"/cases/{filed['number']}").json()
    assert case["channel"] == "sensor" and case["reporter_id"] == "sensor-platform"
    assert case["title"] == "井盖位移"


def test_the_secret_is_shown_once_and_never_listed(api):
    secret = _source(api)["secret"]
    listed = api.get("demo-admin", "/admin/intake-sources")
    assert listed.status_code == 200
    assert listed.json()["data"][0]["name"] == "sensor-platform" and secret not in listed.text
    assert "secret" not in listed.json()["data"][0]


def test_only_an_admin_configures_sources(api):
    r = api.client.post("/api/v1/admin/intake-sources", json={"name": "x", "reporter_id": "x"},
                        headers=auth("demo-community"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_a_source_name_is_taken_once(api):
    _source(api)
    r = api.client.post("/api/v1/admin/intake-sources", json={"name": "sensor-platform", "reporter_id": "y"},
                        headers=auth("demo-admin"))
    assert r.status_code == 409 and r.json()["code"] == "already_exists"


def test_a_bad_signature_is_refused_with_401_problem_json_logged_without_secret_or_body(api, caplog):
    secret = _source(api)["secret"]
    raw = json.dumps(CASE, ensure_ascii=False).encode()
    headers = signed_headers(secret, "evt-bad", datetime.now(timezone.utc), raw)
    caplog.set_level(logging.INFO)
    tampered = raw.replace("井盖".encode(), "路灯".encode())
    r = api.client.post("/api/v1/intake/sensor-platform", content=tampered,
                        headers={"Content-Type": "application/json", **headers})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "signature_invalid"
    assert _count_cases(api) == 0
    refusals = [rec for rec in caplog.records if rec.name == "gridflow.channels" and rec.levelno >= 30]
    assert refusals and getattr(refusals[0], "code") == "signature_invalid"
    logged = caplog.text + " ".join(str(rec.__dict__) for rec in caplog.records)
    assert secret not in logged and secret.removeprefix("whsec_") not in logged
    assert PHONE not in logged and "张三" not in logged


def test_missing_signature_headers_are_refused_as_signature_missing(api):
    _source(api)
    r = api.client.post("/api/v1/intake/sensor-platform", json=CASE)
    assert r.status_code == 401 and r.json()["code"] == "signature_missing"
    assert _count_cases(api) == 0


def test_a_delivery_signed_with_another_sources_secret_is_refused(api):
    _source(api)
    other = _source(api, name="resident-app")["secret"]
    r = _post(api, other, "evt-x")
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid"


def test_stale_and_future_timestamps_are_refused_as_replays(api):
    secret = _source(api)["secret"]
    now = datetime.now(timezone.utc)
    stale = _post(api, secret, "evt-old", at=now - timedelta(minutes=6))
    future = _post(api, secret, "evt-new", at=now + timedelta(minutes=6))
    assert (stale.status_code, stale.json()["code"]) == (401, "timestamp_stale")
    assert (future.status_code, future.json()["code"]) == (401, "timestamp_future")
    assert _count_cases(api) == 0


def test_an_unknown_source_is_refused_with_401(api):
    r = _post(api, "whsec_" + "A" * 44, "evt-1", source="nobody")
    assert r.status_code == 401 and r.json()["code"] == "intake_source_unknown"


def test_the_same_delivery_id_twice_files_one_case_and_answers_it_again(api):
    secret = _source(api)["secret"]
    first = _post(api, secret, "evt-42")
    again = _post(api, secret, "evt-42")  # a retry: signed again, a new timestamp
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == {**first.json(), "replayed": True}
    assert _count_cases(api) == 1
    other = _post(api, secret, "evt-43")
    assert other.status_code == 201 and other.json()["number"] != first.json()["number"]


def test_a_delivery_id_reused_for_another_case_is_refused(api):
    secret = _source(api)["secret"]
    assert _post(api, secret, "evt-7").status_code == 201
    r = _post(api, secret, "evt-7", {**CASE, "title": "另一件事"})
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert _count_cases(api) == 1


def test_a_signed_but_invalid_body_is_refused_with_422_and_files_nothing(api):
    secret = _source(api)["secret"]
    r = _post(api, secret, "evt-9", {"title": "x", "unknown_field": 1})
    assert r.status_code == 422 and r.json()["code"] == "request_invalid"
    r = _post(api, secret, "evt-10", b"not json")
    assert r.status_code == 422
    assert _count_cases(api) == 0


def test_a_delivered_case_is_receipted_to_the_resident_through_the_outbox(api):
    secret = _source(api)["secret"]
    number = _post(api, secret, "evt-r").json()["number"]
    with api.app.services.db.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, payload FROM outbox WHERE kind LIKE 'resident.%'")).all()
    assert [r.kind for r in rows] == ["resident.receipt"]
    payload = rows[0].payload if isinstance(rows[0].payload, dict) else json.loads(rows[0].payload)
    assert number in payload["message"] and payload["data"]["phone"] == PHONE
