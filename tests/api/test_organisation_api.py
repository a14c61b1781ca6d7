"""The organisation over HTTP: departments picked by name (unique, ambiguous, unknown), reports located
without a unit, and the admin's list of organisation changes."""

from __future__ import annotations

from tests.api.helpers import auth


def test_a_department_may_be_picked_by_its_full_or_short_name(api):
    number = api.report()["number"]
    done = api.ok("demo-community", number, "dispatch", {"department": "住建局", "co_handlers": ["区城管局"]})
    taken = next(e for e in done["events"] if e["type"] == "ActionTaken")
    assert taken["data"]["payload"] == {"department": "dept-housing", "co_handlers": ["dept-urban"]}
    assert api.get("demo-housing", f"/cases/{number}").status_code == 200


def test_a_name_several_departments_answer_to_is_refused_listing_the_candidates(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "dispatch", {"department": "分局"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "unit_ambiguous" and list(body["fields"]) == ["department"]
    assert [c["code"] for c in body["candidates"]] == ["dept-ecology", "dept-police"]
    assert "公安分局 (dept-police)" in body["detail"] and "生态环境分局 (dept-ecology)" in body["detail"]
    assert api.get("demo-community", f"/cases/{number}").json()["state"] == "reported"


def test_an_unknown_department_name_is_refused_as_an_unknown_unit(api):
    number = api.report()["number"]
    r = api.act("demo-community", number, "dispatch", {"department": "区教育局"})
    assert r.status_code == 422 and r.json()["code"] == "payload_invalid"
    assert r.json()["fields"] == {"department": "unknown unit '区教育局'"}


def test_a_report_with_only_an_address_lands_in_the_grid_of_the_address_table(api):
    created = api.report("demo-hotline", unit=None, location={"address": "胜利路12号"})
    case = api.get("demo-admin", f"/cases/{created['number']}").json()
    assert case["origin_unit"] == "37060200100202" and case["holder_unit"] == "370602001002"


def test_the_admin_lists_the_organisation_changes_and_no_one_else_may(api):
    r = api.client.get("/api/v1/admin/org/changes", headers=auth("demo-admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 1 and body["data"][0]["actor"] == "demo-seed"
    assert body["data"][0]["summary"].startswith("66 added") and len(body["data"][0]["diff"]["added"]) == 66
    denied = api.client.get("/api/v1/admin/org/changes", headers=auth("demo-supervisor"))
    assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"


def test_the_unit_directory_says_which_units_are_retired(api):
    units = api.get("demo-admin", "/units", kind="grid").json()["data"]
    assert len(units) == 42 and not any(u["retired"] for u in units)


def test_a_retired_department_takes_no_new_dispatch_by_code_or_by_name(api, tmp_path):
    from gridflow.demo.seed import SAMPLE_FILES
    from gridflow.service.organisation import load_org_files

    units = tmp_path / "units.yaml"
    units.write_text("\n".join(line for line in SAMPLE_FILES[0].read_text(encoding="utf-8").splitlines()
                               if "dept-gas" not in line) + "\n", encoding="utf-8")
    change = load_org_files(api.app.services, [units, *SAMPLE_FILES[1:]], "admin")
    assert change.diff["retired"] == [{"code": "dept-gas", "name": "燃气热力公司", "kind": "department"}]
    number = api.report()["number"]
    r = api.act("demo-community", number, "dispatch", {"department": "dept-gas"})
    assert r.status_code == 422 and r.json()["fields"] == {"department": "unit 'dept-gas' is retired (撤销)"}
    by_name = api.act("demo-community", number, "dispatch", {"department": "燃气热力公司"})
    assert by_name.status_code == 422
    assert by_name.json()["fields"] == {"department": "unknown unit '燃气热力公司'"}
