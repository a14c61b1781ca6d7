"""The care register and the monthly visit rate, on real SQLite and PostgreSQL: a CSV loaded (row errors
``file:line``, idempotent by register id), the API (masked personal data, scoped), visits recorded, a month
ending with people missed, and the rate per grid, community and street computed from history."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from gridflow.adapters.orm import CarePerson, CaseRow
from gridflow.api.app import create_app
from gridflow.engine.case import Actor
from gridflow.processes.runners import InlineTimerRunner
from gridflow.service import care
from tests.api.helpers import GRID, OTHER_STREET_GRID, Api, auth

SH = ZoneInfo("Asia/Shanghai")
GRID2 = "37060200100102"
CSV = ("register_id,name,id_number,phone,address,group_type,grid,worker,frequency\n"
       f"P-001,张桂兰,370602194001011234,13812345678,海港路12号3单元501室,独居,{GRID},gw-1,monthly\n"
       f"P-002,李德明,,13900001111,海港路8号,失能,{GRID2},,\n"
       f"P-003,王秀英,,,东山路1号,空巢,{OTHER_STREET_GRID},,monthly\n")
ADMIN = Actor("cli", "admin")


def _load(app, text=CSV, source="people.csv"):
    return care.load_csv(app.services, text, source, ADMIN)


def _cases(app) -> list[str]:
    with app.services.uow(write=False) as uow:
        rows = uow.session.exec(select(CaseRow).where(CaseRow.workflow == "special_care_visit"))
        return [r.number for r in rows]


@pytest.fixture
def october(clock):
    clock.set(datetime(2026, 10, 9, 9, 0, tzinfo=SH))  # the first working day after 国庆
    return clock


def test_loading_the_register_opens_one_visit_case_per_person_and_reloading_opens_none(app, october):
    done = _load(app)
    assert (done.created, done.updated, done.errors) == (3, 0, [])
    numbers = _cases(app)
    assert len(numbers) == 3
    again = _load(app)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3) and _cases(app) == numbers
    changed = _load(app, CSV.replace("海港路8号", "海港路10号"))
    assert (changed.updated, changed.unchanged) == (1, 2) and _cases(app) == numbers
    with app.services.uow(write=False) as uow:
        p2 = uow.session.get(CarePerson, "P-002")
        case = uow.session.exec(select(CaseRow).where(CaseRow.number == p2.case_number)).one()
    assert p2.address == "海港路10号" and case.origin_unit == GRID2 and case.channel == "care_register"


def test_a_file_with_a_wrong_row_loads_nothing_and_names_each_line(app, october):
    bad = CSV + f"P-004,赵四,12345,,,外星人,{GRID},,weekly\nP-001,重复,,,,独居,nowhere,,\n"
    done = _load(app, bad, "bad.csv")
    assert done.created == 0 and _cases(app) == []
    assert "bad.csv:5: id_number: an 18-character resident ID number" in done.errors
    assert any(e.startswith("bad.csv:5: group_type: unknown group '外星人'") for e in done.errors)
    assert any(e.startswith("bad.csv:5: frequency:") for e in done.errors)
    assert "bad.csv:6: grid: unknown grid 'nowhere'" in done.errors
    assert any(e.startswith("bad.csv:6: register_id: 'P-001' again (first on line 2)") for e in done.errors)


def test_gridflow_care_load_prints_file_line_errors(app, october, tmp_path, monkeypatch):
    from gridflow.cli import app as cli

    path = tmp_path / "bad.csv"
    path.write_text("register_id,name,group_type,grid\nP-9,,独居,nowhere\n", encoding="utf-8")
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", app.settings.database_url)
    result = CliRunner().invoke(cli, ["care", "load", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: name: required" in result.output and f"{path}:2: grid: unknown grid" in result.output


def test_the_register_api_is_scoped_and_masks_personal_data(app, october):
    api = Api(TestClient(create_app(app)), app)
    r = api.client.put("/api/v1/care/people/P-010", headers=auth("demo-community"),
                       json={"name": "陈玉芬", "group_type": "独居", "grid": GRID, "phone": "13812345678",
                             "id_number": "370602194001011234", "address": "海港路12号"})
    assert r.status_code == 201, r.text
    assert r.json()["case_number"] and r.json()["phone"] == "13812345678"  # a community dispatcher visits
    seen = api.client.get("/api/v1/care/people/P-010", headers=auth("demo-supervisor")).json()
    assert (seen["name"], seen["phone"], seen["id_number"]) == ("陈**", "138****5678", "370602********1234")
    again = api.client.put("/api/v1/care/people/P-010", headers=auth("demo-community"),
                           json={"name": "陈玉芬", "group_type": "独居", "grid": GRID})
    assert again.status_code == 200 and again.json()["case_number"] == r.json()["case_number"]
    assert again.json()["phone"] is None  # PUT replaces the entry whole
    r = api.client.put("/api/v1/care/people/P-011", headers=auth("demo-community"),
                       json={"name": "外街", "group_type": "独居", "grid": OTHER_STREET_GRID})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = api.client.put("/api/v1/care/people/P-012", headers=auth("demo-grid-worker"),
                       json={"name": "某人", "group_type": "独居", "grid": GRID})
    assert r.status_code == 403
    listed = api.client.get("/api/v1/care/people", headers=auth("demo-community-2")).json()["people"]
    assert listed == []  # another community's register is not theirs
    assert api.client.get("/api/v1/care/people/P-010", headers=auth("demo-resident")).status_code == 404


def test_the_monthly_visit_rate_counts_visits_from_history_per_grid_community_and_street(app, october):
    _load(app)
    api = Api(TestClient(create_app(app)), app)
    with app.services.uow(write=False) as uow:
        number = {p.register_id: p.case_number for p in uow.session.exec(select(CarePerson))}
    api.ok("demo-grid-worker", number["P-001"], "visit", {"method": "home", "condition": "stable"})
    # a phone call does not count for 失能: recorded, the month still owed
    api.ok("demo-community", number["P-002"], "visit", {"method": "phone", "condition": "stable"})
    october.set(datetime(2026, 11, 2, 9, 0, tzinfo=SH))
    InlineTimerRunner(app.services).run_due()
    r = api.client.get("/api/v1/stats/care-visits?month=2026-10", headers=auth("demo-admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == {"owed": 3, "visited": 1, "rate": 0.3333}
    by = {(u["kind"], u["unit"]): (u["owed"], u["visited"]) for u in body["units"]}
    assert by[("grid", GRID)] == (1, 1) and by[("grid", GRID2)] == (1, 0)
    assert by[("community", "370602001001")] == (2, 1) and by[("street", "370602001")] == (2, 1)
    assert by[("street", "370602002")] == (1, 0)
    assert sorted(p["register_id"] for p in body["missed"]) == ["P-002", "P-003"]
    assert all(p["name"].endswith("*") for p in body["missed"])  # an admin sees the register masked
    street = api.client.get("/api/v1/stats/care-visits?month=2026-10", headers=auth("demo-street")).json()
    assert street["total"]["owed"] == 2  # its own street only
    assert api.client.get("/api/v1/stats/care-visits?month=2026-13",
                          headers=auth("demo-admin")).status_code == 422
    # the month was breached and escalated for the two missed, and November is owed by all three
    nov = api.client.get("/api/v1/stats/care-visits?month=2026-11", headers=auth("demo-admin")).json()
    assert nov["total"]["owed"] == 3 and nov["total"]["visited"] == 0


def test_the_care_register_table_is_the_same_in_the_orm_and_the_migrations(db_url, clock):
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    finally:
        eng.dispose()
    assert [d for d in diff if "care_people" in repr(d)] == []


def test_a_missed_month_goes_up_to_the_street_and_the_next_visit_brings_it_back_down(app, october):
    api = Api(TestClient(create_app(app)), app)
    r = api.client.put("/api/v1/care/people/P-020", headers=auth("demo-community"),
                       json={"name": "孙阿婆", "group_type": "独居", "grid": GRID})
    number = r.json()["case_number"]
    october.set(datetime(2026, 11, 2, 9, 0, tzinfo=SH))
    InlineTimerRunner(app.services).run_due()

    def on_street_worklist() -> bool:
        items = api.client.get("/api/v1/worklist", headers=auth("demo-street")).json()["data"]
        return number in [i["number"] for i in items]

    case = api.client.get(f"/api/v1/cases/{number}", headers=auth("demo-admin")).json()
    assert (case["escalation_level"], case["escalation_unit"]) == (1, "370602001") and on_street_worklist()
    api.ok("demo-grid-worker", number, "visit", {"method": "home", "condition": "stable"})
    case = api.client.get(f"/api/v1/cases/{number}", headers=auth("demo-admin")).json()
    assert (case["escalation_level"], case["escalation_unit"]) == (0, None) and not on_street_worklist()
    body = api.client.get(f"/api/v1/cases/{number}/history", headers=auth("demo-admin")).json()
    types = [e["type"] for e in (body["data"] if isinstance(body, dict) else body)]
    assert types.count("CaseEscalated") == 1 and types.count("CaseDeescalated") == 1


def test_gridflow_report_care_visits_prints_the_month(app, october, monkeypatch):
    from gridflow.cli import app as cli

    _load(app)
    october.set(datetime(2026, 11, 2, 9, 0, tzinfo=SH))
    InlineTimerRunner(app.services).run_due()
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", app.settings.database_url)
    result = CliRunner().invoke(cli, ["report", "care-visits", "--month", "2026-10"])
    assert result.exit_code == 0, result.output
    assert "月探访率 2026-10" in result.output and "未探访 P-001" in result.output
    bad = CliRunner().invoke(cli, ["report", "care-visits", "--month", "10/2026"])
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output
