"""Who did it: a resident acting with its case token is recorded as that resident (``resident:<number>``),
never as the staff member who logged the call; the staff member is recorded as the one who reported it,
with the channel and on whose behalf; Idempotency-Keys are scoped to the identity that sent them."""

from __future__ import annotations

PHONE = "13812345678"


def history(api, token: str, number: str) -> list[dict]:
    r = api.get(token, f"/cases/{number}/history")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def hotline_call(api) -> dict:
    return api.report("demo-hotline", workflow="hotline_request", channel="hotline", title="小区停水",
                      reporter={"name": "李明", "phone": PHONE})


def to_rating(api, number: str) -> None:
    api.ok("demo-hotline", number, "dispatch", {"unit": "dept-housing", "urgency": "general"})
    api.ok("demo-housing", number, "sign_for")
    api.ok("demo-housing", number, "contact_requester", {"reached": True})
    api.ok("demo-housing", number, "reply", {"result": "已恢复供水"})
    api.ok("demo-hotline", number, "call_back", {"reached": True})


def test_an_operator_logging_a_call_is_recorded_as_operator_with_channel_and_on_whose_behalf(api):
    created = hotline_call(api)
    number = created["number"]
    reported = next(e for e in history(api, "demo-admin", number) if e["type"] == "CaseReported")
    assert (reported["actor"], reported["role"]) == ("op-1", "hotline_operator")
    assert reported["data"]["channel"] == "hotline"
    assert reported["data"]["on_behalf_of"] == f"resident:{number}"
    assert reported["data"]["on_behalf_of_name"] == "李*"  # masked, as everywhere else
    assert created["resident_token"]


def test_a_case_token_acts_as_the_resident_of_that_case_not_the_staff_member(api):
    created = hotline_call(api)
    number, token = created["number"], created["resident_token"]
    me = api.get(token, "/me").json()
    assert (me["id"], me["role"], me["case_number"]) == (f"resident:{number}", "resident", number)
    to_rating(api, number)
    assert api.ok(token, number, "rate", {"rating": "satisfied"})["state"] == "closed"
    rated = [e for e in history(api, "demo-admin", number)
             if e["type"] == "ActionTaken" and e["data"]["action"] == "rate"]
    assert [(e["actor"], e["role"]) for e in rated] == [(f"resident:{number}", "resident")]


def test_a_grid_workers_case_token_is_the_residents_too(api):
    created = api.report("demo-grid-worker", reporter={"name": "王芳", "phone": "13900001111"})
    number = created["number"]
    assert api.get(created["resident_token"], "/me").json()["id"] == f"resident:{number}"
    reported = next(e for e in history(api, "demo-admin", number) if e["type"] == "CaseReported")
    assert reported["actor"] == "gw-1" and reported["data"]["on_behalf_of"] == f"resident:{number}"


def test_a_resident_rates_only_its_own_case(api):
    mine, other = hotline_call(api), hotline_call(api)
    to_rating(api, other["number"])
    r = api.act(mine["resident_token"], other["number"], "rate", {"rating": "dissatisfied"})
    assert r.status_code == 404  # another case does not exist for this token
    assert api.get("demo-admin", f"/cases/{other['number']}").json()["state"] == "awaiting_rating"


def test_the_staff_members_idempotency_key_cannot_replay_the_residents_request(api):
    created = hotline_call(api)
    number, token = created["number"], created["resident_token"]
    to_rating(api, number)
    first = api.act(token, number, "rate", {"rating": "satisfied"}, **{"Idempotency-Key": "rate-1"})
    assert first.status_code == 200 and first.json()["replayed"] is False
    again = api.act(token, number, "rate", {"rating": "satisfied"}, **{"Idempotency-Key": "rate-1"})
    assert again.status_code == 200 and again.json()["replayed"] is True  # the resident's own retry
    staff = api.act("demo-hotline", number, "rate", {"rating": "satisfied"}, **{"Idempotency-Key": "rate-1"})
    assert staff.status_code == 409 and staff.json()["code"] == "action_not_allowed"  # not a replay
