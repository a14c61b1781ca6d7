"""Telling the resident: receipt (受理回执, 一次性告知), extension with its reason, completion with the
result and an invitation to rate, rework — queued in the outbox with each change, to the phone the case
was reported with, logged masked, and delivered through a generic SMS gateway (a real local server)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from gridflow.adapters.orm import OutboxRow
from gridflow.engine.case import Actor
from gridflow.processes.outbox import dispatch_outbox
from tests.integration.helpers import DISPATCHER, HOUSING, act, report
from tests.integration.receiver import Receiver

PHONE = "13812345678"


@pytest.fixture
def gateway():
    r = Receiver().start()
    yield r
    r.stop()


def _notices(app):
    t = OutboxRow.__table__
    with app.services.db.connect() as conn:
        return conn.execute(sa.select(t.c.kind, t.c.payload, t.c.status)
                            .where(t.c.kind.like("resident.%")).order_by(t.c.id)).all()


def _handled_case(svc) -> str:
    number = report(svc, reporter_phone=PHONE, reporter_name="李明").number
    act(svc, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(svc, number, "acknowledge", HOUSING)
    return number


def test_a_report_with_a_phone_queues_a_receipt_with_number_and_owner_unit(app):
    number = report(app.services, reporter_phone=PHONE).number
    [(kind, payload, status)] = _notices(app)
    assert kind == "resident.receipt" and status == "pending"
    assert number in payload["message"] and "海港社区" in payload["message"]
    assert payload["data"]["phone"] == PHONE and payload["roles"] == ["resident"]


def test_a_case_without_a_phone_queues_nothing_for_the_resident(app):
    report(app.services)
    assert _notices(app) == []


def test_extension_completion_and_rework_are_told_with_reason_and_result(app):
    svc = app.services
    number = _handled_case(svc)
    act(svc, number, "request_extension", HOUSING, {"duration": "2wd", "reason": "需协调物业"})
    assert [n.kind for n in _notices(app)] == ["resident.receipt"]  # a request is not news yet
    act(svc, number, "approve_extension", DISPATCHER)
    act(svc, number, "reply", HOUSING, {"result": "已更换井盖"})
    act(svc, number, "rate", Actor(f"resident:{number}", "resident"), {"rating": "dissatisfied"})
    kinds = [n.kind for n in _notices(app)]
    assert kinds == ["resident.receipt", "resident.extension", "resident.completion", "resident.rework"]
    messages = [n.payload["message"] for n in _notices(app)]
    assert "需协调物业" in messages[1]
    assert "已更换井盖" in messages[2] and "评价" in messages[2]
    assert "重新办理" in messages[3]


def test_resident_notices_are_logged_with_the_phone_masked(app, caplog):
    caplog.set_level(logging.DEBUG)
    report(app.services, reporter_phone=PHONE)
    dispatch_outbox(app.services, app.notifiers)
    assert [n.status for n in _notices(app)] == ["sent"]
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "138****5678" in logged and PHONE not in logged


def test_the_sms_gateway_gets_the_notice_with_the_template_applied(make_app, db_url, gateway, caplog):
    app = make_app(db_url, sms_gateway_url=gateway.url, sms_gateway_token="gw-token",
                   sms_signature="烟台网格", sms_template="【{signature}】{message}（{number}）回复TD退订")
    number = report(app.services, reporter_phone=PHONE).number
    caplog.set_level(logging.DEBUG)
    assert dispatch_outbox(app.services, app.notifiers).dead == 0
    [sms] = gateway.requests
    body = sms.json()
    assert body["phone"] == PHONE and body["id"].startswith("gridflow-outbox-")
    assert body["text"].startswith("【烟台网格】【受理回执】")
    assert body["text"].endswith(f"（{number}）回复TD退订")
    assert sms.headers["authorization"] == "Bearer gw-token"
    assert [n.status for n in _notices(app)] == ["sent"]
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert PHONE not in logged and "gw-token" not in logged


def test_a_failing_sms_gateway_is_retried_later_and_staff_webhooks_never_see_the_phone(make_app, db_url,
                                                                                       gateway):
    staff_hook = Receiver().start()
    try:
        app = make_app(db_url, sms_gateway_url=gateway.url, webhook_url=staff_hook.url)
        report(app.services, reporter_phone=PHONE)
        gateway.status = 502
        report_ = dispatch_outbox(app.services, app.notifiers)
        assert report_.retried >= 1
        [(_, _, status)] = _notices(app)
        assert status == "pending" and len(gateway.requests) == 1
        assert all(PHONE not in r.body.decode() for r in staff_hook.requests)
    finally:
        staff_hook.stop()
