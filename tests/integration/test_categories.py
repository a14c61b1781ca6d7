"""Category limits end to end on real SQLite and real PostgreSQL: recorded at filing, read by grid_event's
timers, fired by the inline runner; a city's catalogue file laid over the shipped one."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from gridflow.adapters.orm import CaseRow
from gridflow.bootstrap import ConfigurationInvalid
from gridflow.engine.errors import PayloadInvalid
from gridflow.processes.runners import InlineTimerRunner
from tests.integration.helpers import DISPATCHER, act, report, snapshot

#: Monday 2026-11-02 09:00 in Yantai: an ordinary working week (office hours 08:30-12:00, 13:30-17:30).
MONDAY_9 = datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
CITY = """\
majors:
  E07: {zh: 扩展事件, en: Local events}
categories:
  - {code: E0102, limits: {handle: 2wh}}
  - {code: E0701, label: {zh: 海滩垃圾, en: Rubbish on the beach}, limits: {handle: 1wh}}
"""


def _dispatched(svc, category: str) -> str:
    number = report(svc, category=category).number
    act(svc, number, "dispatch", DISPATCHER, {"department": "dept-urban"})
    return number


def _handle(svc, number: str):
    row, events, _ = snapshot(svc, number)
    started = [e for e in events if e.type == "DeadlineStarted" and e.data["timer"] == "handle"]
    breached = [e for e in events if e.type == "DeadlineBreached" and e.data["timer"] == "handle"]
    return row, started[-1].data, breached


def test_exposed_rubbish_breaches_its_four_working_hours_while_a_manhole_cover_keeps_sixteen(make_app, db_url,
                                                                                            clock):
    clock.set(MONDAY_9)
    svc = make_app(db_url).services
    rubbish, cover = _dispatched(svc, "E0102"), _dispatched(svc, "C0101")
    row, started, _ = _handle(svc, rubbish)
    assert row.workflow_version == 4 and started["duration"] == "4wh"
    # 09:00-12:00 and 13:30-14:30: four working hours
    assert datetime.fromisoformat(started["due_at"]) == datetime(2026, 11, 2, 14, 30, tzinfo=MONDAY_9.tzinfo)
    assert _handle(svc, cover)[1]["duration"] == "16wh"
    clock.set(datetime(2026, 11, 2, 14, 29, tzinfo=MONDAY_9.tzinfo))
    InlineTimerRunner(svc).run_due()
    assert _handle(svc, rubbish)[2] == []
    clock.set(datetime(2026, 11, 2, 14, 31, tzinfo=MONDAY_9.tzinfo))
    InlineTimerRunner(svc).run_due()
    assert len(_handle(svc, rubbish)[2]) == 1 and _handle(svc, cover)[2] == []


def test_a_city_file_overrides_and_extends_the_catalogue_and_old_cases_keep_their_limits(make_app, db_url,
                                                                                         clock, tmp_path):
    clock.set(MONDAY_9)
    before = report(make_app(db_url).services, category="E0102").number  # filed on the shipped 4wh
    city = tmp_path / "zhifu.yaml"
    city.write_text(CITY, encoding="utf-8")
    svc = make_app(db_url, categories=str(city)).services
    assert svc.categories.get("E0102").limit_texts() == {"handle": "2wh"}
    act(svc, before, "dispatch", DISPATCHER, {"department": "dept-urban"})
    assert _handle(svc, before)[1]["duration"] == "4wh"
    assert _handle(svc, _dispatched(svc, "E0102"))[1]["duration"] == "2wh"
    beach = _dispatched(svc, "E0701")
    assert _handle(svc, beach)[1]["duration"] == "1wh"
    clock.set(datetime(2026, 11, 2, 10, 1, tzinfo=MONDAY_9.tzinfo))
    InlineTimerRunner(svc).run_due()
    assert len(_handle(svc, beach)[2]) == 1


def test_an_unknown_category_files_nothing(app):
    with pytest.raises(PayloadInvalid) as refused:
        report(app.services, category="E9999")
    assert "category" in refused.value.details["fields"]
    with app.services.uow(write=False) as uow:
        assert uow.session.exec(select(CaseRow)).first() is None


def test_a_broken_city_file_stops_the_start_naming_file_and_line(make_app, sqlite_url, tmp_path):
    city = tmp_path / "broken.yaml"
    city.write_text("categories:\n  - {code: E0102, limits: {handle: soon}}\n", encoding="utf-8")
    with pytest.raises(ConfigurationInvalid, match=f"{city}:2:"):
        make_app(sqlite_url, categories=str(city))
