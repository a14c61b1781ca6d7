"""Personal data never leaks, and references respect scope (issue 10) — over HTTP, on SQLite and PostgreSQL.

Roles that contact or visit residents (community, grid worker, department, hotline) see what was written;
the street, the supervisor and the admin see it masked — in titles, descriptions, attachments, case data,
history and the live stream — and every export is masked. A confidential report (举报人保密) hides its
reporter from every handling unit. A payload naming a case or unit outside the caller's scope is refused
exactly like an unknown one.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import time

import pytest

from tests.api.helpers import GRID, OTHER_STREET_GRID
from tests.api.test_live import _events, _listen

#: What was written, in the spellings the issue found leaking, and what must never show masked views.
TITLE = "回电+86 139 8765 4321"
DESCRIPTION = "来电人王五反映：身份证370602199001011234，手机１３６１１１１２２２２，另138-0000-1111"
ATTACHMENTS = [{"name": "13812345678现场.jpg", "url": "https://img.example/13812345678/a.jpg"}]
REPLY = "已联系当事人赵四（+8613700001111，身份证37060219900101123X）"
SECRETS = ("8765 4321", "8765", "19900101", "王五", "１１１１２２２２", "0000-1111", "12345678",
           "00001111", "赵四")
NOT_CONTACT = ("demo-street", "demo-supervisor", "demo-admin")


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def masked_case(api):
    number = api.report("demo-grid-worker", title=TITLE, description=DESCRIPTION, attachments=ATTACHMENTS,
                        reporter={"name": "李明", "phone": "13812345678"})["number"]
    api.ok("demo-community", number, "refer_to_street", {"reason": f"请街道协调，{REPLY}"})
    api.ok("demo-street", number, "handle_locally", {"result": REPLY})
    return number


@pytest.mark.parametrize("token", NOT_CONTACT)
def test_titles_descriptions_attachments_and_case_data_are_masked_for_roles_that_do_not_visit(
        api, masked_case, token):
    case = api.get(token, f"/cases/{masked_case}").json()
    assert case["title"] == "回电+86 139****4321"
    assert "370602********1234" in case["description"] and "来电人王*" in case["description"]
    assert case["attachments"] == [{"name": "138****5678现场.jpg", "url": "https://img.example/138****5678/a.jpg"}]
    assert "370602********123X" in case["data"]["result"]
    assert leaks(json.dumps(case, ensure_ascii=False)) == []
    listed = [c for c in api.get(token, "/cases").json()["data"] if c["number"] == masked_case]
    assert [c["title"] for c in listed] == ["回电+86 139****4321"]
    history = api.get(token, f"/cases/{masked_case}/history").json()
    assert leaks(json.dumps(history, ensure_ascii=False)) == []


def test_the_street_worklist_shows_titles_masked_and_the_community_sees_them_as_written(api, masked_case):
    number = api.report("demo-grid-worker", title=TITLE)["number"]
    api.ok("demo-community", number, "refer_to_street", {"reason": "请街道协调"})
    (line,) = [c for c in api.get("demo-street", "/worklist").json()["data"] if c["number"] == number]
    assert line["title"] == "回电+86 139****4321"
    case = api.get("demo-community", f"/cases/{masked_case}").json()  # a contact role: nothing changes
    assert (case["title"], case["description"]) == (TITLE, DESCRIPTION)
    assert case["attachments"] == ATTACHMENTS
    history = api.get("demo-community", f"/cases/{masked_case}/history").json()
    assert REPLY in json.dumps(history, ensure_ascii=False)


@pytest.mark.parametrize("token", ["demo-community", "demo-admin", "demo-hotline"])
def test_every_export_masks_titles_ids_phones_and_names_in_text(api, masked_case, token):
    r = api.get(token, "/exports/cases")
    assert r.status_code == 200
    text = r.content.decode("utf-8-sig")
    (row,) = [r for r in csv.DictReader(io.StringIO(text)) if r["number"] == masked_case]
    assert row["title"] == "回电+86 139****4321"
    assert "370602********1234" in row["description"] and "来电人王*" in row["description"]
    assert leaks(text) == []


def test_the_live_stream_masks_every_string_of_event_data(api):
    hub = api.client.app.state.hub
    got: dict = {}
    thread = _listen(api, "demo-supervisor", 2, got)
    deadline = time.monotonic() + 10
    while hub.subscribers < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    number = api.report("demo-grid-worker", title=TITLE)["number"]
    api.ok("demo-community", number, "handle_locally", {"result": REPLY})
    thread.join(15)
    events = _events(got["demo-supervisor"])
    assert [e["number"] for e in events] == [number, number]
    text = json.dumps(events, ensure_ascii=False)
    assert leaks(text) == [] and "370602********123X" in text


# --- 举报人保密 ------------------------------------------------------------------------------------

WHISTLE = {"name": "张伟", "phone": "13512345678"}
HANDLERS = ("demo-hotline", "demo-community", "demo-street", "demo-supervisor", "demo-admin",
            "demo-grid-worker", "demo-housing")


@pytest.fixture
def confidential(api):
    created = api.report("demo-hotline", workflow="hotline_request", title="举报占道经营",
                         description="举报人张伟，电话13512345678", reporter=WHISTLE, confidential=True)
    api.ok("demo-hotline", created["number"], "dispatch", {"unit": "dept-housing", "urgency": "general"})
    return created


@pytest.mark.parametrize("token", HANDLERS)
def test_a_confidential_reporter_is_shown_to_no_handling_unit(api, confidential, token):
    number = confidential["number"]
    case = api.get(token, f"/cases/{number}").json()
    assert (case["reporter_name"], case["reporter_phone"], case["reporter_id"]) == (None, None, None)
    assert case["data"]["confidential"] is True and case["contact_masked"]
    history = api.get(token, f"/cases/{number}/history").json()["data"]
    report = [e for e in history if e["type"] in ("CaseReported", "DeadlineStarted")][:2]
    assert [e["actor"] for e in report] == ["confidential", "confidential"]
    dispatched = next(e for e in history if e["type"] == "ActionTaken")
    assert dispatched["actor"] == "op-1"  # the operator stays accountable for what it does afterwards
    text = json.dumps([case, history], ensure_ascii=False)
    assert "张伟" not in text and "13512345678" not in text
    assert "on_behalf_of_name" not in json.dumps(history)  # not even the masked surname (张*)
    export = api.get(token, "/exports/cases").content.decode("utf-8-sig")
    (row,) = [r for r in csv.DictReader(io.StringIO(export)) if r["number"] == number]
    assert (row["reporter_name"], row["reporter_phone"]) == ("", "")
    assert "张伟" not in export and "13512345678" not in export


def test_only_the_reporter_sees_a_confidential_report_as_filed(api, confidential):
    number = confidential["number"]
    token = confidential["resident_token"]  # the hotline hands the caller the case's token
    case = api.get(token, f"/cases/{number}").json()
    assert (case["reporter_name"], case["reporter_phone"]) == ("张伟", "13512345678")
    assert case["reporter_id"] == "op-1"
    assert api.get(token, f"/cases/{number}/history").json()["data"][0]["actor"] == "op-1"
    own = api.report("demo-resident", reporter={"name": "李明", "phone": "13812345678"}, confidential=True)
    mine = api.get("demo-resident", f"/cases/{own['number']}").json()
    assert (mine["reporter_name"], mine["reporter_id"]) == ("李明", "res-1")
    theirs = api.get("demo-community", f"/cases/{own['number']}").json()
    assert (theirs["reporter_name"], theirs["reporter_phone"], theirs["reporter_id"]) == (None, None, None)
    plain = api.get("demo-community", f"/cases/{api.report('demo-resident')['number']}").json()
    assert plain["reporter_id"] == "res-1"  # only a confidential report hides its reporter


def test_the_live_stream_hides_a_confidential_reporter(api):
    hub = api.client.app.state.hub
    got: dict = {}
    thread = _listen(api, "demo-community", 1, got)
    deadline = time.monotonic() + 10
    while hub.subscribers < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    api.report("demo-hotline", workflow="hotline_request", description="举报人张伟13512345678",
               reporter=WHISTLE, confidential=True)
    thread.join(15)
    (change,) = _events(got["demo-community"])
    assert change["events"][0]["type"] == "CaseReported" and change["events"][0]["actor"] == "confidential"
    assert "op-1" not in json.dumps(change)


# --- exports: a BOM, and no formulas ---------------------------------------------------------------

def test_exports_start_with_a_bom_and_defuse_cells_a_spreadsheet_would_run(api):
    api.report(title='=HYPERLINK("http://evil.example/x","点击")', description="@SUM(1+1)")
    api.report(title="+1+2", description="-2+3")
    r = api.get("demo-community", "/exports/cases")
    assert r.content.startswith(codecs.BOM_UTF8)
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(row["title"], row["description"]) for row in rows] == [
        ('\'=HYPERLINK("http://evil.example/x","点击")', "'@SUM(1+1)"), ("'+1+2", "'-2+3")]
    empty = api.get("demo-urban", "/exports/cases")  # nothing in scope: still a BOM and the header
    assert empty.content.startswith(codecs.BOM_UTF8)
    assert empty.content.decode("utf-8-sig").startswith("number,")


# --- references respect scope ------------------------------------------------------------------------

def _refusal(r, name: str) -> dict:
    assert r.status_code == 422, r.text
    return json.loads(r.text.replace(name, "<named>"))


def test_merging_into_a_case_outside_the_callers_scope_is_refused_like_an_unknown_case(api):
    ours = api.report("demo-grid-worker", unit=GRID)["number"]
    theirs = api.report("demo-hotline", unit=OTHER_STREET_GRID)["number"]
    outside = _refusal(api.act("demo-street", ours, "merge", {"duplicate_of": theirs}), theirs)
    unknown = _refusal(api.act("demo-street", ours, "merge", {"duplicate_of": "GF-2026-999999"}),
                       "GF-2026-999999")
    assert outside == unknown and outside["code"] == "payload_invalid"
    assert outside["fields"] == {"duplicate_of": "unknown case '<named>'"}
    assert api.get("demo-admin", f"/cases/{ours}").json()["state"] == "reported"
    twin = api.report("demo-grid-worker", unit=GRID)["number"]
    assert api.act("demo-street", ours, "merge", {"duplicate_of": twin}).status_code == 200


def test_dispatching_to_another_streets_community_is_refused_like_an_unknown_unit(api):
    number = api.report("demo-grid-worker", unit=GRID)["number"]
    other_community = "370602002001"  # 东山社区, in the other street
    outside = _refusal(api.act("demo-community", number, "dispatch", {"department": other_community}),
                       other_community)
    unknown = _refusal(api.act("demo-community", number, "dispatch", {"department": "dept-nowhere"}),
                       "dept-nowhere")
    assert outside == unknown and outside["fields"] == {"department": "unknown unit '<named>'"}
    assert api.get("demo-community", f"/cases/{number}").json()["version"] == 1
    assert api.act("demo-community", number, "dispatch", {"department": "dept-housing"}).status_code == 200
