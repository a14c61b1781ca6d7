"""Who may do what: every role against every endpoint, for a case in its scope and one outside it.

Two cases in the demo district:
- A: reported by resident res-1 in 海港社区第1网格 (street 向阳), dispatched to the housing department;
- B: logged by the 12345 hotline in 东山社区第1网格 (the other street), still awaiting triage.
A case outside a caller's scope does not exist for it (404); a visible case with a role that may
not act gets 403; no credentials get 401. Contacts are masked for roles that do not visit residents.
"""

from __future__ import annotations

import pytest

from gridflow.service.auth import authenticate
from gridflow.service.context import Change
from gridflow.service.scopes import scope_of, sees_change
from tests.api.helpers import GRID, OTHER_STREET_GRID, auth

A, B = "A", "B"
PHONE = "13812345678"

#: caller → (cases it sees, sees contacts, is staff, may supervise)
MATRIX = {
    "demo-admin": ({A, B}, False, True, False),
    "demo-supervisor": ({A, B}, False, True, True),
    "demo-street": ({A}, False, True, True),  # an upper-level escalation handler may supervise (督办)
    "demo-community": ({A}, True, True, False),
    "demo-community-2": (set(), True, True, False),
    "demo-grid-worker": ({A}, True, True, False),
    "demo-housing": ({A}, True, True, False),
    "demo-urban": (set(), True, True, False),
    "demo-hotline": ({A, B}, True, True, False),
    "demo-resident": ({A}, True, False, False),
    "case-token-A": ({A}, True, False, False),
}


@pytest.fixture
def world(api):
    a = api.report("demo-resident", reporter={"name": "李明", "phone": PHONE},
                   location={"address": "海港路12号"}, description=f"请联系{PHONE}")
    api.ok("demo-community", a["number"], "dispatch", {"department": "dept-housing"})
    b = api.report("demo-hotline", unit=OTHER_STREET_GRID, reporter={"name": "王芳", "phone": "13900001111"})
    return {"numbers": {A: a["number"], B: b["number"]}, "case-token-A": a["resident_token"]}


def _token(world, caller: str) -> str:
    return world.get(caller, caller)


@pytest.mark.parametrize("caller", sorted(MATRIX))
def test_read_endpoints_show_exactly_the_cases_in_scope(api, world, caller):
    visible, sees_contact, is_staff, _ = MATRIX[caller]
    token = _token(world, caller)
    for label, number in world["numbers"].items():
        expected = 200 if label in visible else 404
        for path in (f"/cases/{number}", f"/cases/{number}/history", f"/cases/{number}/history/verify"):
            r = api.get(token, path)
            assert r.status_code == expected, (caller, label, path, r.text)
            if expected == 404:
                assert r.json()["code"] == "case_not_found"
    listed = {c["number"] for c in api.get(token, "/cases").json()["data"]}
    assert listed == {world["numbers"][x] for x in visible}
    queue = {c["number"] for c in api.get(token, "/worklist").json()["data"]}
    assert queue <= listed


@pytest.mark.parametrize("caller", sorted(MATRIX))
def test_contacts_are_masked_for_roles_that_do_not_visit_residents(api, world, caller):
    visible, sees_contact, _, _ = MATRIX[caller]
    token = _token(world, caller)
    if A not in visible:  # nothing of the case reaches this caller at all
        assert api.get(token, f"/cases/{world['numbers'][A]}").status_code == 404
        return
    case = api.get(token, f"/cases/{world['numbers'][A]}").json()
    history = api.get(token, f"/cases/{world['numbers'][A]}/history").text
    if sees_contact:
        assert case["reporter_phone"] == PHONE and case["reporter_name"] == "李明"
        assert case["address"] == "海港路12号" and not case["contact_masked"]
    else:
        assert case["reporter_phone"] == "138****5678" and case["reporter_name"] == "李*"
        assert case["address"] == "海港路**号" and case["contact_masked"]
        assert PHONE not in case["description"] and PHONE not in history


@pytest.mark.parametrize("caller", sorted(MATRIX))
def test_actions_need_scope_then_role(api, world, caller):
    visible, _, _, may_supervise = MATRIX[caller]
    token = _token(world, caller)
    number = world["numbers"][A]
    r = api.act(token, number, "supervise", {"instructions": "请加快办理"})
    if A not in visible:
        assert r.status_code == 404 and r.json()["code"] == "case_not_found"
    elif may_supervise:
        assert r.status_code == 200 and r.json()["state"] == "dispatched"
    else:
        assert r.status_code == 403 and r.json()["code"] == "role_not_allowed"
    r = api.act(token, number, "acknowledge")
    if A not in visible:
        assert r.status_code == 404
    elif caller == "demo-housing":
        assert r.status_code == 200 and r.json()["state"] == "handling"
    else:
        assert r.status_code == 403, (caller, r.text)


@pytest.mark.parametrize("caller", sorted(MATRIX))
def test_statistics_exports_and_the_directory_are_for_staff(api, world, caller):
    _, _, is_staff, _ = MATRIX[caller]
    token = _token(world, caller)
    for path in ("/stats/sla", "/exports/cases", "/units"):
        r = api.get(token, path)
        assert r.status_code == (200 if is_staff else 403), (caller, path, r.text)
        if not is_staff:
            assert r.json()["code"] == "forbidden"
    total = api.get("demo-admin", "/stats/sla").json()["total"]
    # both communities received a case (intake), housing one dispatch: received counts per unit now
    assert total["received"] == 3 and total["receipts"] == 1


@pytest.mark.parametrize("caller", sorted(MATRIX))
def test_administration_is_for_admins_only(api, world, caller):
    token = _token(world, caller)
    expected_read, expected_write = (200, 201) if caller == "demo-admin" else (403, 403)
    assert api.get(token, "/users").status_code == expected_read
    assert api.get(token, "/api-keys").status_code == expected_read
    r = api.client.post("/api/v1/units", json={"code": f"grid-{caller}", "name": "新网格", "kind": "grid",
                                                "parent": "370602001001"}, headers=auth(token))
    assert r.status_code == expected_write, r.text
    r = api.client.post("/api/v1/api-keys", json={"user_id": "cd-1"}, headers=auth(token))
    assert r.status_code == expected_write


@pytest.mark.parametrize("caller", sorted(MATRIX))
def test_live_changes_reach_only_callers_who_see_the_case(api, world, caller):
    """The SSE filter uses the same scope as the reads (checked here without a stream; see test_live)."""
    visible, *_ = MATRIX[caller]
    svc = api.app.services
    scope = scope_of(svc, authenticate(svc, _token(world, caller)))
    for label, number in world["numbers"].items():
        case = api.get("demo-admin", f"/cases/{number}").json()
        change = Change(number, "grid_event", case["state"], case["version"], (), case["holder_unit"],
                        case["escalation_unit"], case["community_code"], case["street_code"],
                        case["district_code"], case["reporter_id"], "action")
        assert sees_change(svc, scope, change) == (label in visible), (caller, label)


def test_no_credentials_get_401_everywhere_but_public_intake_and_workflows(api, world):
    number = world["numbers"][A]
    for method, path in (("GET", f"/cases/{number}"), ("GET", "/cases"), ("GET", "/worklist"),
                         ("GET", "/stats/sla"), ("GET", "/events"), ("GET", "/me"), ("GET", "/users"),
                         ("POST", f"/cases/{number}/actions/acknowledge"),
                         ("GET", f"/cases/{number}/history")):
        r = api.client.request(method, f"/api/v1{path}")
        assert r.status_code == 401, (method, path)
        assert r.json()["code"] == "unauthorized" and r.headers["www-authenticate"].startswith("Bearer")
    assert api.client.get("/api/v1/workflows").status_code == 200
    assert api.client.post("/api/v1/cases", json={"category": "C0102", "unit": GRID}).status_code == 201


def test_unknown_and_revoked_keys_get_401(api, world):
    assert api.get("not-a-key", "/me").status_code == 401
    token = api.client.post("/api/v1/api-keys", json={"user_id": "cd-2", "label": "tablet"},
                            headers=auth("demo-admin")).json()["token"]
    assert api.get(token, "/me").json()["id"] == "cd-2"
    keys = api.get("demo-admin", "/api-keys", user="cd-2").json()["data"]
    key_id = next(k["id"] for k in keys if k["label"] == "tablet")
    assert api.client.delete(f"/api/v1/api-keys/{key_id}", headers=auth("demo-admin")).status_code == 204
    assert api.get(token, "/me").status_code == 401


def test_bearer_and_api_key_headers_are_equivalent(api, world):
    by_key = api.client.get("/api/v1/me", headers={"X-API-Key": "demo-housing"}).json()
    by_bearer = api.client.get("/api/v1/me", headers={"Authorization": "Bearer demo-housing"}).json()
    assert by_key == by_bearer == {"id": "dh-housing", "role": "department_handler", "unit": "dept-housing",
                                   "name": "住建局 承办人", "case_number": None}
