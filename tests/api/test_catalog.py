"""The event catalogue over HTTP: the listing, and reports refused for an unknown or missing category with the
closest codes — on real SQLite and real PostgreSQL."""

from __future__ import annotations

from tests.api.helpers import GRID, auth


def test_the_catalogue_lists_labels_in_both_languages_limits_kind_urgency_and_default_workflow(api):
    r = api.client.get("/api/v1/catalog")  # public, like the report form that needs it
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(body["data"]) > 50
    rubbish = next(c for c in body["data"] if c["code"] == "E0102")
    assert rubbish == {
        "code": "E0102", "label": {"zh": "暴露垃圾", "en": "Exposed rubbish"}, "kind": "event",
        "kind_label": {"zh": "事件", "en": "Event"}, "major": "E01",
        "major_label": {"zh": "市容环境", "en": "City appearance"}, "workflow": "grid_event",
        "urgency": "normal", "limits": {"handle": "4wh"}, "assignment": ["territory", "owner"]}
    codes = [c["code"] for c in body["data"]]
    assert codes == sorted(codes)


def test_the_catalogue_filters_by_kind_and_by_workflow(api):
    hotline = api.client.get("/api/v1/catalog", params={"kind": "hotline"}).json()["data"]
    assert [c["label"]["zh"] for c in hotline] == ["咨询", "求助", "投诉", "举报", "建议"]
    disputes = api.client.get("/api/v1/catalog", params={"workflow": "dispute_mediation"}).json()["data"]
    assert disputes and {c["major"] for c in disputes} == {"G01"}
    r = api.client.get("/api/v1/catalog", params={"kind": "planet"})
    assert r.status_code == 422 and r.json()["code"] == "request_invalid"


def test_a_report_with_an_unknown_category_is_refused_naming_the_field_and_the_closest_codes(api):
    r = api.client.post("/api/v1/cases", headers=auth("demo-grid-worker"),
                        json={"category": "0101", "title": "井盖破损", "unit": GRID})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "payload_invalid" and "category" in problem["fields"]
    assert problem["suggestions"][:2] == ["C0101", "E0101"]
    assert "C0101" in problem["detail"] and "C0101" in problem["fields"]["category"]
    assert api.get("demo-admin", "/cases").json()["data"] == []  # nothing was filed


def test_a_report_without_a_category_is_refused(api):
    r = api.client.post("/api/v1/cases", headers=auth("demo-grid-worker"), json={"title": "x", "unit": GRID})
    assert r.status_code == 422
    assert r.json()["code"] == "payload_invalid" and r.json()["fields"]["category"].startswith("missing")


def test_an_anonymous_report_with_an_unknown_category_is_refused_before_it_counts(api):
    r = api.client.post("/api/v1/cases", json={"category": "9999", "title": "x", "unit": GRID})
    assert r.status_code == 422 and r.json()["code"] == "payload_invalid"


def test_a_report_naming_no_workflow_opens_its_categorys_default_workflow(api):
    dispute = api.report(category="G0101", title="邻里纠纷")
    assert api.get("demo-admin", f"/cases/{dispute['number']}").json()["workflow"] == "dispute_mediation"
    rubbish = api.report(category="E0102", title="暴露垃圾")
    assert api.get("demo-admin", f"/cases/{rubbish['number']}").json()["workflow"] == "grid_event"
    named = api.report(category="G0101", workflow="grid_event", title="邻里纠纷")
    assert api.get("demo-admin", f"/cases/{named['number']}").json()["workflow"] == "grid_event"


def test_a_dispatched_case_explains_the_handling_limit_of_its_category(api):
    number = api.report(category="E0102", title="暴露垃圾")["number"]
    api.ok("demo-community", number, "dispatch", {"department": "dept-urban"})
    deadlines = {d["timer"]: d for d in api.get("demo-admin", f"/cases/{number}").json()["deadlines"]}
    assert deadlines["handle"]["duration"] == "4wh" and deadlines["handle"]["allowed_s"] == 4 * 3600
    workflow = api.client.get("/api/v1/workflows/grid_event").json()
    timers = {t["name"]: t for s in workflow["states"] if s["name"] == "dispatched" for t in s["timers"]}
    assert timers["handle"]["category_limit"] == "handle" and timers["handle"]["duration"] == "16wh"
