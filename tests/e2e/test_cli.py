"""The gridflow command, in-process: clear messages naming file and line, non-zero exits on bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridflow.cli import app
from gridflow.engine.case import Actor
from gridflow.service.actions import TakeAction, take_action
from gridflow.service.intake import ReportCase, report_case
from tests.api.helpers import GRID, tamper_event

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workflows" / "property_repair.yaml"


@pytest.fixture
def cli(monkeypatch):
    for var in ("GRIDFLOW_DATABASE_URL", "GRIDFLOW_WORKFLOWS_DIR", "GRIDFLOW_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def city(make_app, sqlite_url):
    """A SQLite database with two cases, one dispatched; returns (path, app, numbers)."""
    gf = make_app(sqlite_url)
    svc = gf.services
    numbers = [report_case(svc, ReportCase("grid_event", Actor("gw-1", "grid_worker", GRID), category="C0101",
                                           title=t)).number
               for t in ("井盖破损", "路灯不亮")]
    take_action(svc, TakeAction(numbers[0], "dispatch", Actor("cd-1", "community_dispatcher", "370602001001"),
                                {"department": "dept-urban"}))
    return Path(sqlite_url.removeprefix("sqlite:///")), gf, numbers


def test_validate_accepts_good_definitions(cli):
    r = cli("workflows", "validate", EXAMPLE, ROOT / "gridflow" / "workflows" / "grid_event.yaml")
    assert r.exit_code == 0
    assert "property_repair@1" in r.stdout and "grid_event@" in r.stdout


def test_validate_names_file_line_and_element_of_every_problem(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\nversion: 1\ninitial: start\nroles: [grid_worker, nobody]\nstates:\n"
                   "  start:\n    stage: report\n    timers:\n      - name: t\n"
                   "        duration: 3 fortnights\n"
                   "  end: {final: true}\nactions:\n"
                   "  go: {from: [start], to: nowhere, roles: [grid_worker]}\n",
                   encoding="utf-8")
    r = cli("workflows", "validate", bad, EXAMPLE)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert f"{bad}:4: [role nobody] unknown role 'nobody'" in "\n".join(lines)
    assert any(line.startswith(f"{bad}:10: [state start / timer t] cannot parse duration") for line in lines)
    assert any(line.startswith(f"{bad}:13: [action go] unknown state 'nowhere'") for line in lines)
    assert "1 of 2 file(s) invalid" in r.stderr
    assert "property_repair@1" in r.stdout  # the good file is still checked and reported


def test_validate_a_missing_file_says_which(cli, tmp_path):
    r = cli("workflows", "validate", tmp_path / "nope.yaml")
    assert r.exit_code == 1 and "nope.yaml" in r.stderr and "cannot read" in r.stderr


def test_list_shows_shipped_and_custom_workflows(cli, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_WORKFLOWS_DIR", str(EXAMPLE.parent))
    r = cli("workflows", "list")
    assert r.exit_code == 0 and "grid_event" in r.stdout and "property_repair" in r.stdout


def test_draw_prints_mermaid_in_either_language(cli):
    zh = cli("workflows", "draw", "grid_event")
    en = cli("workflows", "draw", "grid_event", "--lang", "en")
    assert zh.exit_code == en.exit_code == 0
    assert "stateDiagram-v2" in zh.stdout and "待研判" in zh.stdout
    assert "Awaiting triage" in en.stdout and "待研判" not in en.stdout
    example = cli("workflows", "draw", EXAMPLE)
    assert example.exit_code == 0 and "物业报修" in example.stdout
    assert cli("workflows", "draw", "grid_event", "--lang", "fr").exit_code == 2
    unknown = cli("workflows", "draw", "no_such_flow")
    assert unknown.exit_code == 1 and "no workflow named 'no_such_flow'" in unknown.stderr


def test_db_upgrade_creates_the_schema_and_status_agrees(cli, tmp_path):
    db = tmp_path / "fresh.db"
    assert cli("db", "status", "--db", db).exit_code == 1
    r = cli("db", "upgrade", "--db", db)
    assert r.exit_code == 0 and "schema at" in r.stdout
    assert cli("db", "status", "--db", db).exit_code == 0


def test_commands_refuse_a_database_without_schema_and_say_what_to_run(cli, tmp_path):
    r = cli("audit", "verify", "--db", tmp_path / "empty.db")
    assert r.exit_code == 1 and "gridflow db upgrade" in r.stderr


def test_audit_verify_passes_intact_chains_and_names_the_first_broken_link(cli, city):
    path, gf, numbers = city
    ok = cli("audit", "verify", "--db", path)
    assert ok.exit_code == 0 and "2 case(s)" in ok.stdout
    tamper_event(gf.services.db, numbers[0], 2, "mallory")
    broken = cli("audit", "verify", "--db", path)
    assert broken.exit_code == 1
    assert f"BROKEN {numbers[0]}: event 2:" in broken.stderr and numbers[1] not in broken.stderr


def test_cases_show_prints_the_deadlines_and_the_timeline(cli, city):
    path, _, numbers = city
    r = cli("cases", "show", numbers[0], "--db", path)
    assert r.exit_code == 0
    for text in (numbers[0], "待签收", "dept-urban", "签收时限", "reported in",
                 "dispatch reported → dispatched",
                 "timeline"):
        assert text in r.stdout, text
    missing = cli("cases", "show", "GF-2026-999999", "--db", path)
    assert missing.exit_code == 1 and "no case" in missing.stderr


def test_migrate_moves_open_cases_to_a_new_version(cli, make_app, sqlite_url, tmp_path, monkeypatch):
    flows = tmp_path / "flows"
    flows.mkdir()
    v1 = EXAMPLE.read_text(encoding="utf-8")
    (flows / "property_repair.yaml").write_text(v1, encoding="utf-8")
    gf = make_app(sqlite_url, workflows_dir=flows)
    number = report_case(gf.services, ReportCase("property_repair", Actor("res-1", "resident", GRID),
                                                        category="C0501")).number
    v2 = v1.replace("version: 1", "version: 2").replace("submitted", "received")
    (flows / "property_repair_v2.yaml").write_text(v2, encoding="utf-8")
    monkeypatch.setenv("GRIDFLOW_WORKFLOWS_DIR", str(flows))
    db = sqlite_url.removeprefix("sqlite:///")
    bad = cli("workflows", "migrate", "property_repair", "--to", "2", "--db", db)
    assert bad.exit_code == 1 and "--map submitted=" in bad.stderr
    oops = cli("workflows", "migrate", "property_repair", "--to", "2", "--map", "oops", "--db", db)
    assert oops.exit_code == 2
    r = cli("workflows", "migrate", "property_repair", "--to", "2", "--map", "submitted=received", "--db", db)
    assert r.exit_code == 0 and "moved 1 open case(s)" in r.stdout
    with gf.services.uow(write=False) as uow:
        row = uow.cases.get(number)
    assert (row.workflow_version, row.state) == (2, "received")


def test_production_commands_call_the_celery_side_or_explain_its_absence(cli, monkeypatch):
    calls = []
    import gridflow.processes.scheduler as scheduler
    import gridflow.processes.worker as worker

    monkeypatch.setattr(scheduler, "run_scheduler", lambda settings: calls.append(("scheduler", settings)))
    monkeypatch.setattr(worker, "run_worker", lambda settings, concurrency, loglevel:
                        calls.append(("worker", concurrency, loglevel)))
    assert cli("scheduler").exit_code == 0
    assert cli("worker", "--concurrency", "4", "--loglevel", "WARNING").exit_code == 0
    assert calls[0][0] == "scheduler" and calls[1] == ("worker", 4, "WARNING")
    # as if production mode were absent:
    monkeypatch.setitem(sys.modules, "gridflow.processes.scheduler", None)
    r = cli("scheduler")
    assert r.exit_code == 1 and "production mode is not available" in r.stderr


def test_bad_settings_are_named(cli, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_ENVIRONMENT", "production")
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", "sqlite:///x.db")
    r = cli("audit", "verify")
    assert r.exit_code == 2 and "bad settings" in r.stderr and "PostgreSQL" in r.stderr


def test_demo_simulates_every_stage_and_an_escalation(cli, tmp_path):
    db = tmp_path / "city.db"
    r = cli("demo", "--days", "3", "--seed", "1", "--db", db)
    assert r.exit_code == 0, r.stdout + r.stderr
    out = r.stdout
    for stage in ("网格上报", "社区研判", "部门响应", "居民评价", "核查结案", "超期升级"):
        assert stage in out, stage
    assert "CaseEscalated" in out and "SLA per responsible unit" in out and "an escalated case" in out
    assert db.exists() and "gridflow cases show GF-" in out
    # the care register: the month closed, a phone call for 失能 not counted, the child never visited
    assert "care visits 2026-11 (月探访率)" in out and "missed ZF-0002" in out and "missed ZF-0005" in out
    assert cli("audit", "verify", "--db", db).exit_code == 0


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.startswith("gridflow ")
