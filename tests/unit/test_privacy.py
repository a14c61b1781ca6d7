"""Masking of residents' personal data, and the scope rule as plain data (no database)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gridflow.service.auth import Caller
from gridflow.service.exports import safe_cell
from gridflow.service.masking import (
    CONFIDENTIAL_ACTOR, CONTACT_ROLES, contact_for, events_for, exposure, hidden_reporter, mask_address,
    mask_name, mask_phone, mask_point, mask_text, mask_value, sees_contact,
)
from gridflow.service.scopes import Scope, may_name_unit


@pytest.mark.parametrize("name, masked", [("李明", "李*"), ("欧阳娜娜", "欧***"), ("Li", "L*"), ("", ""),
                                          (None, None)])
def test_names_keep_only_the_first_character(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("phone, masked", [
    ("13812345678", "138****5678"), ("138-1234-5678", "138****5678"), ("+86 0535 6612345", "*********2345"),
    ("110", "****"), (None, None),
])
def test_phones_keep_only_what_identifies_the_line_not_the_person(phone, masked):
    assert mask_phone(phone) == masked


def test_addresses_keep_the_road_and_lose_the_numbers():
    assert mask_address("芝罘区海港路12号3单元501室") == "芝罘区海港路**号*单元***室"


def test_phone_numbers_inside_free_text_are_masked():
    text = "请联系李先生13812345678或座机0535-6612345，谢谢"
    assert mask_text(text) == "请联系李先生138****5678或座机0535-***2345，谢谢"
    assert mask_text("编号2026001号井盖") == "编号2026001号井盖"  # not a phone number


def test_exact_coordinates_are_rounded_to_about_a_hundred_metres():
    assert mask_point(37.531234, 121.394567) == (37.531, 121.395)
    assert mask_point(None, None) == (None, None)


def test_masking_reaches_nested_event_data():
    data = {"payload": {"reason": "电话13812345678", "n": 3}, "list": ["13900001111"]}
    assert mask_value(data) == {"payload": {"reason": "电话138****5678", "n": 3}, "list": ["139****1111"]}


def test_who_sees_contacts():
    assert {"resident", "grid_worker", "community_dispatcher", "department_handler"} <= CONTACT_ROLES
    assert not {"supervisor", "admin", "street_dispatcher"} & CONTACT_ROLES
    assert not sees_contact(None)


ROW = SimpleNamespace(number="GF-2026-000001", reporter_id="res-1",
                      reporter_name="李明", reporter_phone="13812345678", address="海港路12号", lat=37.5312,
                      lon=121.3945, description="请回电13812345678")


def test_contact_is_whole_for_a_dispatcher_masked_for_a_supervisor_and_always_in_exports():
    dispatcher = Caller("cd-1", "community_dispatcher", "370602001001")
    whole = contact_for(dispatcher, ROW)
    assert ((whole.name, whole.phone, whole.address, whole.lat)
            == ("李明", "13812345678", "海港路12号", 37.5312))
    masked = contact_for(Caller("sv-1", "supervisor", "370602"), ROW)
    assert ((masked.name, masked.phone, masked.address, masked.lat)
            == ("李*", "138****5678", "海港路**号", 37.531))
    assert masked.description == "请回电138****5678"
    assert contact_for(dispatcher, ROW, export=True).phone == "138****5678"


def test_events_are_masked_only_for_callers_who_do_not_see_contacts():
    events = [{"seq": 1, "type": "ActionTaken", "data": {"payload": {"reason": "13812345678"}}}]
    assert events_for(Caller("x", "department_handler"), events) == events
    assert events_for(Caller("x", "supervisor"), events)[0]["data"] == {"payload": {"reason": "138****5678"}}


def test_a_scope_matches_a_case_when_any_term_matches():
    scope = Scope(terms=(("community_code", frozenset({"C1"})), ("reporter_id", frozenset({"me"}))))
    assert scope.contains({"community_code": "C1", "reporter_id": "x"})
    assert scope.contains({"community_code": "C2", "reporter_id": "me"})
    assert not scope.contains({"community_code": "C2", "reporter_id": "x"})
    assert not scope.contains({"community_code": None, "reporter_id": None})
    assert Scope(everything=True).contains({})
    assert not Scope().contains({"community_code": "C1"})


def test_a_scope_fetches_a_fact_a_live_change_does_not_carry():
    grid = Scope(terms=(("origin_unit", frozenset({"G1"})),))
    asked = []
    assert grid.contains({"number": "GF-1"}, fetch=lambda col: asked.append(col) or "G1")
    assert asked == ["origin_unit"]
    assert not grid.contains({"number": "GF-1"})  # without a way to look it up, not shown


# --- every spelling of a phone, ID numbers, names after cues (issue 10) ---------------------------------

@pytest.mark.parametrize("text, masked", [
    ("回电13812345678", "回电138****5678"),
    ("回电+86 139 8765 4321", "回电+86 139****4321"),
    ("回电138-0000-1111", "回电138****1111"),
    ("回电138.0000.1111", "回电138****1111"),
    ("回电+8613700001111", "回电+86137****1111"),
    ("回电0086 13700001111", "回电0086 137****1111"),
    ("回电(+86)137-0000 1111", "回电(+86)137****1111"),
    ("回电１３６１１１１２２２２", "回电１３６****２２２２"),
    ("回电１３６-1111-２２２２", "回电１３６****２２２２"),
    ("座机(0535)6612345", "座机(0535)***2345"),
    ("座机0535 661 2345", "座机0535 ***2345"),
])
def test_phones_in_every_common_spelling_are_masked_in_free_text(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text, masked", [
    ("身份证370602199001011234", "身份证370602********1234"),
    ("身份证37060219900101123X。", "身份证370602********123X。"),
    ("身份证37060219900101123x", "身份证370602********123x"),
    ("证件 370602 1990 0101 1234", "证件 370602********1234"),
    ("老证130602900101123，", "老证130602*****1123，"),
])
def test_resident_id_numbers_keep_the_region_and_the_last_four_never_the_birth_date(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text, masked", [
    ("来电人王五称楼道漏水", "来电人王*称楼道漏水"),
    ("联系人：欧阳娜娜，电话见附件", "联系人：欧***，电话见附件"),
    ("举报人: 李明反映", "举报人: 李*反映"),
    ("投诉人 张三丰", "投诉人 张**"),
    ("被举报人赵四", "被举报人赵*"),
    ("当事人刘德明与邻居", "当事人刘**与邻居"),
    ("来电人反映楼道漏水", "来电人反映楼道漏水"),  # no name follows the cue
    ("请联系李先生", "请联系李先生"),
])
def test_names_after_known_cues_are_masked_like_names(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", ["编号2026001号井盖", "单元37060200100101", "GF-2026-000001",
                                  "2026-10-01 09:30", "单价12.50元，共100件"])
def test_numbers_that_are_not_personal_data_are_left_alone(text):
    assert mask_text(text) == text


def test_phones_inside_attachment_names_and_urls_are_masked():
    attachments = [{"name": "13812345678现场.jpg", "size": 12,
                    "url": "https://img.example/u/13812345678.jpg?id=370602199001011234"}]
    assert mask_value(attachments) == [{"name": "138****5678现场.jpg", "size": 12,
                                        "url": "https://img.example/u/138****5678.jpg?id=370602********1234"}]


CONFIDENTIAL = SimpleNamespace(number="GF-2026-000009", reporter_id="res-1", reporter_name="李明",
                               reporter_phone="13812345678", address="海港路12号", lat=37.5312, lon=121.3945,
                               description="我是李明，电话13812345678", title="举报13812345678",
                               sla={"data": {"confidential": True}})


@pytest.mark.parametrize("caller", [Caller("cd-1", "community_dispatcher", "370602001001"),
                                    Caller("dh-1", "department_handler", "dept-housing"),
                                    Caller("op-1", "hotline_operator", "370602"),
                                    Caller("sv-1", "supervisor", "370602"), Caller("admin", "admin", None),
                                    Caller("res-2", "resident", None)])
def test_a_confidential_reporter_is_hidden_from_every_handling_unit(caller):
    c = contact_for(caller, CONFIDENTIAL)
    assert (c.name, c.phone, c.reporter_id) == (None, None, None)
    assert "13812345678" not in c.description
    assert not exposure(caller, CONFIDENTIAL).reporter


@pytest.mark.parametrize("caller", [Caller("res-1", "resident", None),
                                    Caller("anon-1", "resident", None, case_number="GF-2026-000009")])
def test_a_confidential_reporter_still_sees_their_own_report(caller):
    c = contact_for(caller, CONFIDENTIAL)
    assert (c.name, c.phone, c.reporter_id) == ("李明", "13812345678", "res-1")
    assert c.description == CONFIDENTIAL.description
    assert contact_for(caller, CONFIDENTIAL, export=True).name is None


def test_a_confidential_reporter_is_hidden_in_the_report_and_in_what_it_does_as_a_resident():
    events = [{"seq": 1, "type": "CaseReported", "actor": "res-1", "role": "resident",
               "data": {"note": "13812345678"}},
              {"seq": 2, "type": "DeadlineStarted", "actor": "res-1", "role": "resident", "data": {}},
              {"seq": 3, "type": "ActionTaken", "actor": "cd-1", "role": "community_dispatcher", "data": {}},
              {"seq": 4, "type": "ActionTaken", "actor": "res-1", "role": "resident", "data": {}}]
    dispatcher = Caller("cd-1", "community_dispatcher", "370602001001")
    hide = hidden_reporter(dispatcher, confidential=True, number="GF-2026-000009", reporter_id="res-1")
    shown = events_for(dispatcher, events, hide_actor=hide)
    assert [e["actor"] for e in shown] == [CONFIDENTIAL_ACTOR, CONFIDENTIAL_ACTOR, "cd-1", CONFIDENTIAL_ACTOR]
    assert shown[0]["data"] == {"note": "138****5678"}  # a contact role, but the reporter's text is masked
    assert hidden_reporter(Caller("res-1", "resident"), confidential=True, number="GF-2026-000009",
                           reporter_id="res-1") is None
    assert hidden_reporter(dispatcher, confidential=False, number="GF-2026-000009",
                           reporter_id="res-1") is None


def test_an_operator_who_logged_a_confidential_report_is_hidden_only_in_the_report():
    events = [{"type": "CaseReported", "actor": "op-1", "role": "hotline_operator", "data": {}},
              {"type": "ActionTaken", "actor": "op-1", "role": "hotline_operator", "data": {}},
              {"type": "DeadlineStarted", "actor": "op-1", "role": "hotline_operator", "data": {}}]
    shown = events_for(Caller("sv-1", "supervisor", "370602"), events, hide_actor="op-1")
    assert [e["actor"] for e in shown] == [CONFIDENTIAL_ACTOR, "op-1", "op-1"]
    later = events_for(Caller("sv-1", "supervisor", "370602"), events[2:], hide_actor="op-1",
                       from_report=False)
    assert [e["actor"] for e in later] == ["op-1"]


@pytest.mark.parametrize("value, cell", [
    ('=HYPERLINK("http://evil.example/x","点击")', '\'=HYPERLINK("http://evil.example/x","点击")'),
    ("+1+2", "'+1+2"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("楼道漏水", "楼道漏水"), ("", ""), (-3, -3), (None, None),
])
def test_export_cells_that_would_run_as_formulas_are_defused(value, cell):
    assert safe_cell(value) == cell


def _units():
    from gridflow.service.units import UnitDirectory, UnitInfo

    d = UnitDirectory()
    d._units = {u.code: u for u in (
        UnitInfo("3706", "烟台市", "city", None), UnitInfo("370602", "芝罘区", "district", "3706"),
        UnitInfo("370603", "福山区", "district", "3706"),
        UnitInfo("S1", "向阳街道", "street", "370602"), UnitInfo("S2", "东山街道", "street", "370602"),
        UnitInfo("C1", "海港社区", "community", "S1"), UnitInfo("C2", "东山社区", "community", "S2"),
        UnitInfo("G1", "海港第1网格", "grid", "C1"),
        UnitInfo("dept-housing", "区住建局", "department", "370602"),
        UnitInfo("dept-other", "福山住建局", "department", "370603"),
        UnitInfo("dept-city", "市局", "department", "3706"))}
    return SimpleNamespace(units=d)


@pytest.mark.parametrize("caller, reachable", [
    (Caller("cd-1", "community_dispatcher", "C1"), {"C1", "G1", "dept-housing", "dept-city"}),
    (Caller("sd-1", "street_dispatcher", "S1"), {"S1", "C1", "G1", "dept-housing", "dept-city"}),
    (Caller("op-1", "hotline_operator", "370602"),
     {"370602", "S1", "S2", "C1", "C2", "G1", "dept-housing", "dept-city"}),
    (Caller("dh-1", "department_handler", "dept-housing"),
     {"370602", "S1", "S2", "C1", "C2", "G1", "dept-housing", "dept-city"}),
    (Caller("x", "street_dispatcher", None), set()),
])
def test_a_caller_may_name_only_units_within_its_area_and_its_districts_departments(caller, reachable):
    svc = _units()
    assert {code for code in svc.units._units if may_name_unit(svc, caller, code)} == reachable
    assert may_name_unit(svc, Caller("admin", "admin", None), "dept-other")
