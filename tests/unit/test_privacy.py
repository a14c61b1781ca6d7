"""Masking of residents' personal data, and the scope rule as plain data (no database)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gridflow.service.auth import Caller
from gridflow.service.masking import (
    CONTACT_ROLES, contact_for, events_for, mask_address, mask_name, mask_phone, mask_point, mask_text,
    mask_value, sees_contact,
)
from gridflow.service.scopes import Scope


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


ROW = SimpleNamespace(reporter_name="李明", reporter_phone="13812345678", address="海港路12号", lat=37.5312,
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
