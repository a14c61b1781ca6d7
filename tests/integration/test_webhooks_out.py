"""Outgoing webhooks: case events queued in the outbox with the change, for the subscribers that chose
them, delivered signed (Standard Webhooks) to a real local server, retried with exponential backoff on
failures, dead-lettered after ``GRIDFLOW_OUTBOX_MAX_ATTEMPTS`` and retried by an admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from gridflow.adapters.orm import OutboxRow
from gridflow.api.app import create_app
from gridflow.engine.errors import PayloadInvalid
from gridflow.processes.outbox import dispatch_outbox
from gridflow.service import channels
from tests.api.helpers import auth
from tests.integration.helpers import DISPATCHER, act, report
from tests.integration.receiver import Receiver


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def _rows(app, kind="webhook"):
    t = OutboxRow.__table__
    with app.services.db.connect() as conn:
        return conn.execute(sa.select(t.c.id, t.c.status, t.c.attempts, t.c.next_attempt_at, t.c.payload)
                            .where(t.c.kind == kind).order_by(t.c.id)).all()


def test_a_subscriber_gets_the_events_it_chose_signed_and_verifiable(app, receiver):
    made = channels.create_subscriber(app.services, receiver.url, ["CaseReported", "ActionTaken"], "区平台")
    number = report(app.services, reporter_phone="13812345678").number
    act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    assert len(_rows(app)) == 2  # queued with the changes, before anything is sent
    report_ = dispatch_outbox(app.services, app.notifiers)
    assert report_.dead == 0 and report_.retried == 0
    assert len(receiver.requests) == 2
    events = [Webhook(made.secret).verify(r.body, r.headers) for r in receiver.requests]
    assert [e["type"] for e in events] == ["CaseReported", "ActionTaken"]
    assert all(e["case"] == number for e in events)
    assert events[1]["data"]["action"] == "dispatch"
    assert receiver.requests[0].headers["webhook-id"].startswith("gf_")
    assert all("13812345678" not in r.body.decode() for r in receiver.requests)  # no personal data
    assert [r.status for r in _rows(app)] == ["sent", "sent"]


def test_events_a_subscriber_did_not_choose_are_not_queued_for_it(app, receiver):
    channels.create_subscriber(app.services, receiver.url, ["CaseClosed"])
    report(app.services)
    assert _rows(app) == []


def test_a_refused_change_queues_no_event(app, receiver):
    channels.create_subscriber(app.services, receiver.url, ["*"])
    with pytest.raises(PayloadInvalid):
        report(app.services, unit="no-such-unit")
    assert _rows(app) == []


def test_a_removed_subscriber_is_sent_nothing_more(app, receiver):
    made = channels.create_subscriber(app.services, receiver.url, ["*"])
    report(app.services)
    queued = len(_rows(app))
    channels.remove_subscriber(app.services, made.subscriber.id)
    dispatch_outbox(app.services, app.notifiers)
    assert queued > 0 and receiver.requests == []
    report(app.services)
    assert len(_rows(app)) == queued  # only what was queued before it was removed


def test_failed_deliveries_back_off_exponentially_then_die_and_an_admin_retries_them(make_app, db_url,
                                                                                     receiver, clock):
    app = make_app(db_url, outbox_max_attempts=4, outbox_backoff_base=10.0)
    channels.create_subscriber(app.services, receiver.url, ["CaseReported"])
    report(app.services)
    receiver.status = 500
    delays = []
    for attempt in range(1, 5):
        before = clock.now()
        dispatch_outbox(app.services, app.notifiers)
        [row] = _rows(app)
        assert row.attempts == attempt
        if attempt < 4:
            assert row.status == "pending"
            delays.append((row.next_attempt_at - before).total_seconds())
            assert dispatch_outbox(app.services, app.notifiers).handled == 0  # not due yet
            clock.advance(row.next_attempt_at - before)
    assert row.status == "dead" and len(receiver.requests) == 4
    # base·2^(n-1), with jitter keeping half to all of it: 5–10 s, 10–20 s, 20–40 s
    for n, delay in enumerate(delays, start=1):
        assert 10 * 2 ** (n - 1) * 0.5 <= delay <= 10 * 2 ** (n - 1)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # one delivery, retried

    client = TestClient(create_app(app))
    dead = client.get("/api/v1/admin/dead-letters", headers=auth("demo-admin"))
    assert dead.status_code == 200
    [letter] = dead.json()["data"]
    assert letter["kind"] == "webhook" and letter["attempts"] == 4 and letter["event_type"] == "CaseReported"
    assert "500" in letter["last_error"]
    assert client.get("/api/v1/admin/dead-letters", headers=auth("demo-community")).status_code == 403

    receiver.status = 200
    r = client.post(f"/api/v1/admin/dead-letters/{letter['id']}/retry", headers=auth("demo-admin"))
    assert r.status_code == 204
    assert client.post(f"/api/v1/admin/dead-letters/{letter['id']}/retry",
                       headers=auth("demo-admin")).status_code == 404  # no longer dead
    assert dispatch_outbox(app.services, app.notifiers).sent == 1
    assert [row.status for row in _rows(app)] == ["sent"]
    assert client.get("/api/v1/admin/dead-letters", headers=auth("demo-admin")).json()["data"] == []


def test_an_admin_manages_subscribers_over_the_api_and_never_sees_a_secret_twice(app, receiver):
    client = TestClient(create_app(app))
    r = client.post("/api/v1/admin/webhooks", headers=auth("demo-admin"),
                    json={"url": receiver.url, "event_types": ["CaseClosed", "ActionTaken"], "label": "平台"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["secret"].startswith("whsec_") and made["event_types"] == ["CaseClosed", "ActionTaken"]
    listed = client.get("/api/v1/admin/webhooks", headers=auth("demo-admin"))
    assert listed.json()["data"][0]["id"] == made["id"] and made["secret"] not in listed.text
    bad = client.post("/api/v1/admin/webhooks", headers=auth("demo-admin"),
                      json={"url": receiver.url, "event_types": ["not an event"]})
    assert bad.status_code == 422
    assert client.post("/api/v1/admin/webhooks", headers=auth("demo-housing"),
                       json={"url": receiver.url, "event_types": ["*"]}).status_code == 403
    admin = auth("demo-admin")
    assert client.delete(f"/api/v1/admin/webhooks/{made['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/admin/webhooks", headers=admin).json()["data"][0]["active"] is False
    assert client.delete("/api/v1/admin/webhooks/999", headers=auth("demo-admin")).status_code == 404


def test_the_lease_and_backoff_use_the_case_clock_not_wall_time(app, receiver, clock):
    channels.create_subscriber(app.services, receiver.url, ["CaseReported"])
    report(app.services)
    receiver.status = 503
    dispatch_outbox(app.services, app.notifiers)
    [row] = _rows(app)
    assert clock.now() < row.next_attempt_at <= clock.now() + timedelta(seconds=2)
