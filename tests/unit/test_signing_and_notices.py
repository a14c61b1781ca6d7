"""Webhook signatures follow Standard Webhooks (checked against its reference library), and what the
resident is told comes from the events of a change."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from gridflow.engine.masks import mask_phone
from gridflow.engine.resident_notices import COMPLETION, EXTENSION, RECEIPT, REWORK, resident_notices
from gridflow.engine.signing import SignatureRefused, new_secret, signed_headers, verify

def _now() -> datetime:
    return datetime.now(timezone.utc)


BODY = json.dumps({"title": "井盖位移", "reporter": {"phone": "13812345678"}}, ensure_ascii=False).encode()


def test_what_gridflow_signs_verifies_with_the_standard_webhooks_reference_library():
    now = _now()
    secret = new_secret()
    headers = signed_headers(secret, "msg_1", now, BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_what_the_reference_library_signs_verifies_in_gridflow():
    now = _now()
    secret = new_secret()
    ts = int(now.timestamp())
    signature = Webhook(secret).sign("msg_2", datetime.fromtimestamp(ts, timezone.utc), BODY.decode())
    headers = {"Webhook-Id": "msg_2", "Webhook-Timestamp": str(ts), "Webhook-Signature": signature}
    assert verify(secret, headers, BODY, now).id == "msg_2"


def test_a_changed_body_or_another_secret_is_refused_as_signature_invalid():
    now = _now()
    secret = new_secret()
    headers = signed_headers(secret, "msg_3", now, BODY)
    for sec, body in ((secret, BODY + b" "), (new_secret(), BODY)):
        with pytest.raises(SignatureRefused) as refused:
            verify(sec, headers, body, now)
        assert refused.value.code == "signature_invalid"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_one_matching_signature_among_several_is_enough_while_a_secret_is_rotated():
    now = _now()
    old, new = new_secret(), new_secret()
    headers = signed_headers(new, "msg_4", now, BODY)
    headers["webhook-signature"] = signed_headers(old, "msg_4", now, BODY)["webhook-signature"] + " " + \
        headers["webhook-signature"]
    assert verify(new, headers, BODY, now).id == "msg_4"


@pytest.mark.parametrize("drop", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused_as_signature_missing(drop):
    now = _now()
    secret = new_secret()
    headers = signed_headers(secret, "msg_5", now, BODY)
    del headers[drop]
    with pytest.raises(SignatureRefused) as refused:
        verify(secret, headers, BODY, now)
    assert refused.value.code == "signature_missing" and drop in refused.value.message


@pytest.mark.parametrize("skew,code", [(-301, "timestamp_stale"), (301, "timestamp_future")])
def test_a_timestamp_outside_five_minutes_is_refused_even_when_correctly_signed(skew, code):
    now = _now()
    secret = new_secret()
    headers = signed_headers(secret, "msg_6", now + timedelta(seconds=skew), BODY)
    with pytest.raises(SignatureRefused) as refused:
        verify(secret, headers, BODY, now)
    assert refused.value.code == code


def test_a_timestamp_within_five_minutes_is_accepted():
    now = _now()
    secret = new_secret()
    for skew in (-299, 299):
        assert verify(secret, signed_headers(secret, "m", now + timedelta(seconds=skew), BODY), BODY, now)


def test_a_timestamp_that_is_not_unix_seconds_is_refused():
    now = _now()
    secret = new_secret()
    headers = signed_headers(secret, "m", now, BODY)
    headers["webhook-timestamp"] = "2026-12-01T10:00:00Z"
    with pytest.raises(SignatureRefused) as refused:
        verify(secret, headers, BODY, now)
    assert refused.value.code == "timestamp_invalid"


def _event(type_: str, **data):
    return SimpleNamespace(type=type_, data=data)


def test_a_report_gets_a_receipt_with_the_case_number_the_owner_unit_and_what_happens_next():
    [notice] = resident_notices("GF-2026-000001", [_event("CaseReported")], {}, "海港社区")
    assert notice.kind == RECEIPT
    assert "GF-2026-000001" in notice.message and "海港社区" in notice.message
    assert "受理" in notice.message and "评价" in notice.message  # 一次性告知: what comes next


def test_an_approved_extension_tells_its_reason_for_the_resident():
    events = [_event("ActionTaken", kind="extension_approval", action="approve_extension")]
    [notice] = resident_notices("GF-1", events, {"extension_reason_for_requester": "需协调物业"}, "x")
    assert notice.kind == EXTENSION and "需协调物业" in notice.message


def test_a_reply_tells_the_result_and_invites_a_rating():
    events = [_event("ActionTaken", kind="reply", payload={"result": "已更换井盖"})]
    [notice] = resident_notices("GF-1", events, {}, "x")
    assert notice.kind == COMPLETION and "已更换井盖" in notice.message and "评价" in notice.message


def test_rework_is_told_whether_ordered_or_caused_by_a_dissatisfied_rating():
    ordered = [_event("ActionTaken", kind="rework", payload={"reason": "井盖仍松动"}, to_state="handling")]
    assert resident_notices("GF-1", ordered, {}, "x")[0].kind == REWORK
    rated = [_event("ActionTaken", kind="rate", payload={"rating": "dissatisfied"}, to_state="handling")]
    [notice] = resident_notices("GF-1", rated, {}, "x", frozenset({"handling"}))
    assert notice.kind == REWORK and "不满意" in notice.message
    satisfied = [_event("ActionTaken", kind="rate", payload={"rating": "satisfied"}, to_state="reviewing")]
    assert resident_notices("GF-1", satisfied, {}, "x", frozenset({"handling"})) == []


def test_other_changes_tell_the_resident_nothing():
    events = [_event("ActionTaken", kind="dispatch"), _event("DeadlineWarned"), _event("CaseAssigned")]
    assert resident_notices("GF-1", events, {}, "x") == []


def test_the_shared_phone_mask_keeps_three_and_four_digits():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678").endswith("5678") and "1234" not in mask_phone("+86 138 1234 5678")
