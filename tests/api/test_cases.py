"""Cases over HTTP: report, read, list, act, history — on real SQLite and real PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from tests.api.helpers import GRID, OTHER_STREET_GRID, tamper_event


def test_reported_case_is_readable_with_state_version_etag_and_deadline_explanation(api):
    created = api.report(description="楼道顶部漏水", reporter={"name": "李明", "phone": "13812345678"})
    assert created["number"].startswith("GF-2026-")
    assert created["state"] == "reported" and created["version"] == 1
    assert created["resident_token"]  # a phone number was given: the caller can follow the case

    r = api.get("demo-community", f"/cases/{created['number']}")
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    case = r.json()
    assert case["state_label"] == "待研判" and case["stage"] == "triage"
    assert case["holder_unit"] == "370602001001"
    assert case["sla"]["light"] == "green" and case["sla"]["left_s"] == 4 * 3600
    assert case["allowed_actions"] == ["handle_locally", "merge", "reject", "dispatch", "refer_to_street",
                                       "reply_supervision_order", "close_part", "consult"]
    (deadline,) = case["deadlines"]
    assert deadline["timer"] == "triage" and deadline["calendar"]["name"] == "cn"
    assert deadline["allowed_s"] == 14400 and deadline["used_s"] == 0 and not deadline["overdue"]


def test_report_locates_the_grid_from_coordinates(api):
    from gridflow.demo.seed import grid_center

    lat, lon = grid_center(OTHER_STREET_GRID)
    created = api.report(token=None, unit=None, location={"lat": lat, "lon": lon})
    case = api.get("demo-admin", f"/cases/{created['number']}").json()
    assert case["origin_unit"] == OTHER_STREET_GRID and case["street_code"] == "370602002"


def test_an_anonymous_report_outside_every_grid_goes_to_the_districts_triage_pool_not_refused(api):
    created = api.report(token=None, unit=None, location={"lat": 1.0, "lon": 1.0})
    case = api.get("demo-admin", f"/cases/{created['number']}").json()
    assert case["origin_unit"] == "370602" and case["holder_unit"] == "370602"
    assert case["community_code"] is None  # no grid: the district's dispatchers triage it


def test_anonymous_resident_reports_and_follows_the_case_with_its_token(api):
    created = api.report(token=None, reporter={"name": "王芳", "phone": "13900001111"})
    token = created["resident_token"]
    mine = api.get(token, f"/cases/{created['number']}")
    assert mine.status_code == 200
    assert mine.json()["reporter_phone"] == "13900001111"  # residents see their own contact
    assert api.get(token, "/me").json()["case_number"] == created["number"]
    other = api.report()
    assert api.get(token, f"/cases/{other['number']}").status_code == 404


def test_action_returns_new_state_version_and_etag(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "dispatch", {"department": "dept-housing"})
    assert r.status_code == 200
    body = r.json()
    assert body["state"] == "dispatched" and body["version"] == 2 and r.headers["etag"] == '"2"'
    assert [e["type"] for e in body["events"]][:2] == ["ActionTaken", "CaseAssigned"]
    assert all(len(e["hash"]) == 64 for e in body["events"])


def test_stale_if_match_gets_409_version_conflict_and_changes_nothing(api):
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    r = api.act("demo-housing", number, "acknowledge", **{"If-Match": '"1"'})
    assert r.status_code == 409
    assert r.json()["code"] == "version_conflict" and r.json()["current"] == 2
    assert api.get("demo-housing", f"/cases/{number}").json()["state"] == "dispatched"
    fresh = api.act("demo-housing", number, "acknowledge", **{"If-Match": 'W/"2"'})
    assert fresh.status_code == 200 and fresh.json()["state"] == "handling"


def test_malformed_if_match_is_a_request_error(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "reject", {"reason": "x"}, **{"If-Match": "yesterday"})
    assert r.status_code == 422 and r.json()["code"] == "request_invalid"


def test_idempotency_key_replays_the_first_result_instead_of_acting_twice(api):
    number = api.report()["number"]
    first = api.act("demo-community", number, "dispatch", {"department": "dept-housing"},
                    **{"Idempotency-Key": "k-1"})
    again = api.act("demo-community", number, "dispatch", {"department": "dept-housing"},
                    **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.json()["replayed"] is True and again.json()["version"] == first.json()["version"] == 2
    history = api.get("demo-admin", f"/cases/{number}/history").json()["data"]
    assert sum(1 for e in history if e["type"] == "ActionTaken") == 1
    reused = api.act("demo-community", number, "dispatch", {"department": "dept-urban"},
                     **{"Idempotency-Key": "k-1"})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


def test_action_not_allowed_in_state_gets_409_with_the_allowed_actions(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "approve_extension")
    assert r.status_code == 409
    problem = r.json()
    assert problem["code"] == "action_not_allowed" and problem["state"] == "reported"
    assert "dispatch" in problem["allowed"]
    assert r.headers["content-type"] == "application/problem+json"


def test_role_not_allowed_gets_403(api):
    number = api.report()["number"]
    r = api.act("demo-grid-worker", number, "dispatch", {"department": "dept-housing"})
    assert r.status_code == 403 and r.json()["code"] == "role_not_allowed"
    assert r.json()["roles"] == ["community_dispatcher", "street_dispatcher", "district_dispatcher"]


def test_unknown_action_gets_404_unknown_action(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "teleport")
    assert r.status_code == 404 and r.json()["code"] == "unknown_action"


def test_missing_required_field_gets_422_with_the_fields(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "reject", {})
    assert r.status_code == 422
    assert r.json()["code"] == "payload_invalid" and r.json()["fields"] == {"reason": "is required"}


def test_dispatch_to_an_unknown_department_is_refused_before_anything_is_written(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "dispatch", {"department": "dept-nowhere"})
    assert r.status_code == 422 and r.json()["fields"] == {"department": "unknown unit 'dept-nowhere'"}
    assert api.get("demo-community", f"/cases/{number}").json()["version"] == 1


def test_guard_failure_gets_409_guard_failed(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "merge", {"duplicate_of": number})
    assert r.status_code == 409 and r.json()["code"] == "guard_failed"


def test_history_lists_every_event_and_verifies(api):
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    history = api.get("demo-supervisor", f"/cases/{number}/history").json()["data"]
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    assert history[0]["type"] == "CaseReported" and history[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(history, history[1:]))
    assert {"actor", "role", "at", "hash"} <= set(history[-1])
    verdict = api.get("demo-supervisor", f"/cases/{number}/history/verify").json()
    assert verdict == {"number": number, "ok": True, "events": len(history), "broken_seq": None, "reason": ""}


def test_history_verify_names_the_edited_event(api):
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    tamper_event(api.app.services.db, number, 2, "mallory")
    verdict = api.get("demo-admin", f"/cases/{number}/history/verify").json()
    assert verdict["ok"] is False and verdict["broken_seq"] == 2


def test_list_filters_and_paginates_with_a_cursor(api):
    numbers = [api.report(category="C0501" if i % 2 else "C0101")["number"] for i in range(5)]
    api.ok("demo-community", numbers[0], "dispatch", {"department": "dept-housing"})
    page = api.get("demo-admin", "/cases", limit=2).json()
    assert ([c["number"] for c in page["data"]] == numbers[:2][::-1]
            or [c["number"] for c in page["data"]] == [numbers[4], numbers[3]])
    seen = [c["number"] for c in page["data"]]
    while page["next_cursor"]:
        page = api.get("demo-admin", "/cases", limit=2, cursor=page["next_cursor"]).json()
        seen += [c["number"] for c in page["data"]]
    assert seen == numbers[::-1]
    assert ({c["number"] for c in api.get("demo-admin", "/cases", state="dispatched").json()["data"]}
            == {numbers[0]})
    assert ({c["number"] for c in api.get("demo-admin", "/cases", stage="response").json()["data"]}
            == {numbers[0]})
    assert len(api.get("demo-admin", "/cases", category="C0101").json()["data"]) == 3
    assert ({c["number"] for c in api.get("demo-admin", "/cases", unit="dept-housing").json()["data"]}
            == {numbers[0]})
    assert len(api.get("demo-admin", "/cases", unit=GRID).json()["data"]) == 5
    assert api.get("demo-admin", "/cases", escalation_level=1).json()["data"] == []
    assert api.get("demo-admin", "/cases", overdue=True).json()["data"] == []
    assert len(api.get("demo-admin", "/cases", closed=False).json()["data"]) == 5


def test_list_filters_reported_between(api, clock):
    first = api.report()["number"]
    clock.advance(hours=3)
    second = api.report()["number"]
    start = clock.now() - timedelta(hours=1)
    assert [c["number"] for c in api.get("demo-admin", "/cases",
                                         reported_from=start.isoformat()).json()["data"]] == [second]
    assert [c["number"] for c in api.get("demo-admin", "/cases",
                                         reported_to=start.isoformat()).json()["data"]] == [first]


def test_a_forged_cursor_is_a_request_error(api):
    r = api.get("demo-admin", "/cases", cursor="bm9wZQ")
    assert r.status_code == 422 and r.json()["code"] == "request_invalid"


def test_overdue_case_turns_red_escalates_and_shows_in_the_overdue_filter(api, clock):
    number = api.report()["number"]
    clock.advance(hours=3, minutes=30)  # 08:00 → 11:30 local: 3 of 4 working hours used (warning at 0.75)
    api.app.runner.run_due()
    case = api.get("demo-community", f"/cases/{number}").json()
    assert case["sla"]["light"] == "yellow" and case["warned"]
    clock.advance(hours=4)  # 15:30 local: past the 4 working hours (lunch does not count)
    api.app.runner.run_due()
    case = api.get("demo-community", f"/cases/{number}").json()
    assert case["sla"]["light"] == "red" and case["sla"]["left_s"] < 0
    assert case["escalation_level"] == 1 and case["escalation_unit"] == "370602001"
    assert case["deadlines"][0]["overdue"] and case["deadlines"][0]["breaches"] == 1
    assert [c["number"] for c in api.get("demo-community", "/cases", overdue=True).json()["data"]] == [number]
    assert [c["number"] for c in api.get("demo-community", "/cases", warned=True).json()["data"]] == [number]


def test_worklist_is_the_callers_queue_most_urgent_first(api, clock):
    early = api.report()["number"]
    clock.advance(hours=1, minutes=30)  # 09:30 local: the early case has used an hour of working time
    late = api.report()["number"]
    other = api.report(unit=OTHER_STREET_GRID)["number"]
    items = api.get("demo-community", "/worklist").json()["data"]
    assert [c["number"] for c in items] == [early, late]  # other community's case is not waiting on us
    assert items[0]["sla"]["left_s"] < items[1]["sla"]["left_s"]
    assert all(c["sla"]["light"] == "green" for c in items)
    api.ok("demo-community", early, "dispatch", {"department": "dept-housing"})
    assert [c["number"] for c in api.get("demo-housing", "/worklist").json()["data"]] == [early]
    assert [c["number"] for c in api.get("demo-community", "/worklist").json()["data"]] == [late]
    assert other not in [c["number"] for c in api.get("demo-street", "/worklist").json()["data"]]


def test_resident_feedback_and_review_close_the_case(api):
    created = api.report(token="demo-resident")
    number = created["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    api.ok("demo-housing", number, "acknowledge")
    api.ok("demo-housing", number, "reply", {"result": "已修复"})
    assert [c["number"] for c in api.get("demo-resident", "/worklist").json()["data"]] == [number]
    api.ok("demo-resident", number, "rate", {"rating": "satisfied"})
    done = api.ok("demo-grid-worker", number, "verify_pass")
    assert done["state"] == "closed"
    case = api.get("demo-resident", f"/cases/{number}").json()
    assert case["closed"] and case["outcome"] == "resolved" and case["allowed_actions"] == []


def test_sla_stats_report_the_three_rates_per_unit(api):
    a = api.report(token="demo-resident")["number"]
    b = api.report()["number"]
    c = api.report()["number"]
    for n in (a, b):
        api.ok("demo-community", n, "dispatch", {"department": "dept-housing"})
        api.ok("demo-housing", n, "acknowledge")
        api.ok("demo-housing", n, "reply", {"result": "已修复"})
    api.ok("demo-resident", a, "rate", {"rating": "satisfied"})
    api.ok("demo-grid-worker", b, "rate", {"rating": "dissatisfied"})
    api.ok("demo-grid-worker", a, "verify_pass")
    api.ok("demo-community", c, "reject", {"reason": "重复上报"})
    stats = api.get("demo-supervisor", "/stats/sla", **{"from": "2026-09-30", "to": "2026-09-30"}).json()
    by_unit = {u["unit"]: u for u in stats["units"]}
    housing = by_unit["dept-housing"]
    # counted from history per unit (docs/three-rates.md): b is open again after its dissatisfied rating
    assert housing["received"] == 2 and housing["resolved"] == 1 and housing["open"] == 1
    assert housing["rated"] == 2 and housing["rework_rounds"] == 1
    assert housing["response_rate"] == 1.0 and housing["resolution_rate"] == 1.0
    assert housing["satisfaction_rate"] == 0.5 and housing["responded_on_time"] == 2
    assert housing["breaches"] == 0
    community = by_unit["370602001001"]
    assert (community["received"] == 3 and community["not_accepted"] == 1 and community["passed_on"] == 1
            and community["resolution_rate"] is None and community["receipts"] == 0)
    assert stats["total"]["received"] == 5
    assert api.get("demo-supervisor", "/stats/sla", **{"from": "2026-10-01"}).json()["total"]["received"] == 0
    only = api.get("demo-supervisor", "/stats/sla", unit="dept-housing").json()
    assert [u["unit"] for u in only["units"]] == ["dept-housing"]
    bad = api.get("demo-supervisor", "/stats/sla", **{"from": "2026-10-02", "to": "2026-10-01"})
    assert bad.status_code == 422


def test_export_is_csv_with_contacts_always_masked(api):
    api.report(description="请回电13812345678", reporter={"name": "李明", "phone": "13812345678"},
               location={"address": "海港路12号"})
    r = api.get("demo-community", "/exports/cases")  # the community sees contacts on screen, not in exports
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert row["reporter_name"] == "李*" and row["reporter_phone"] == "138****5678"
    assert row["address"] == "海港路**号" and "13812345678" not in r.text
    assert api.get("demo-resident", "/exports/cases").status_code == 403


def test_a_case_that_changed_hands_elsewhere_is_out_of_reach_even_for_its_last_handler(api, make_app, db_url):
    """Scope facts remembered from an earlier action never authorise a later one: the action is pinned to
    the version they were seen at, so a change made by another process turns into a fresh check."""
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    api.ok("demo-housing", number, "acknowledge")  # the housing department's view of the case is remembered
    elsewhere = make_app(db_url).services  # another API worker or the CLI: its changes are not seen here
    from gridflow.engine.case import Actor
    from gridflow.service.actions import TakeAction, take_action

    take_action(elsewhere, TakeAction(number, "return_case",
                                      Actor("dh-housing", "department_handler", "dept-housing"),
                                      {"reason_code": "not_our_duty", "reason": "非本部门职责"}))
    r = api.act("demo-housing", number, "request_suspension",
                {"reason_code": "resident_unavailable", "reason": "业主外出", "duration": "1wd"})
    assert r.status_code == 404  # now held by the community again: it does not exist for housing
    r = api.act("demo-community", number, "dispatch", {"department": "dept-urban"})
    assert r.status_code == 200 and r.json()["version"] == 5


def test_a_stale_remembered_version_is_retried_not_reported_as_a_conflict(api, make_app, db_url):
    number = api.report()["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-housing"})
    elsewhere = make_app(db_url).services
    from gridflow.engine.case import Actor
    from gridflow.service.actions import TakeAction, take_action

    take_action(elsewhere, TakeAction(number, "supervise", Actor("sv-1", "supervisor", "370602"),
                                      {"instructions": "督办"}))
    r = api.act("demo-housing", number, "acknowledge")  # no If-Match: act on the case as it is now
    assert r.status_code == 200 and r.json()["version"] == 4
