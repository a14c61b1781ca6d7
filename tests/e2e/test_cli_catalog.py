"""``gridflow catalog``: validate names file and line of every problem and exits non-zero; list shows the
catalogue this installation files against (GRIDFLOW_CATEGORIES included)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gridflow.cli import app

CITY = """\
majors:
  E07: {zh: 扩展事件, en: Local events}
categories:
  - {code: E0102, limits: {handle: 2wh}}
  - {code: E0701, label: {zh: 海滩垃圾, en: Rubbish on the beach}}
"""


@pytest.fixture
def cli(monkeypatch):
    for var in ("GRIDFLOW_DATABASE_URL", "GRIDFLOW_WORKFLOWS_DIR", "GRIDFLOW_CATEGORIES"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_catalog_validate_accepts_a_city_file_over_the_shipped_one(cli, tmp_path):
    city = tmp_path / "zhifu.yaml"
    city.write_text(CITY, encoding="utf-8")
    r = cli("catalog", "validate", city)
    assert r.exit_code == 0, r.stderr
    assert f"ok {city}" in r.stdout.replace("\n", "")


def test_catalog_validate_reports_every_problem_of_every_file_as_file_and_line(cli, tmp_path):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("categories:\n  - {code: E0102, urgency: whenever}\n  - {code: Q1}\n", encoding="utf-8")
    two.write_text("categories:\n  - {code: E0103, limits: {handel: 2wd}}\n", encoding="utf-8")
    r = cli("catalog", "validate", one, two)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert any(line.startswith(f"{one}:2: [category E0102] unknown urgency 'whenever'") for line in lines)
    assert any(line.startswith(f"{one}:3: [category Q1] code 'Q1'") for line in lines)
    assert any(line.startswith(f"{two}:2: [category E0103] limit 'handel'") for line in lines)
    assert "3 problem(s) in 2 file(s)" in r.stderr


def test_catalog_list_shows_the_city_catalogue_and_filters_by_kind(cli, tmp_path, monkeypatch):
    city = tmp_path / "zhifu.yaml"
    city.write_text(CITY, encoding="utf-8")
    monkeypatch.setenv("GRIDFLOW_CATEGORIES", str(city))
    r = cli("catalog", "list", "--kind", "event")
    assert r.exit_code == 0
    assert "E0701" in r.stdout and "海滩垃圾" in r.stdout and "handle=2wh" in r.stdout
    assert "C0101" not in r.stdout
    assert cli("catalog", "list", "--kind", "planet").exit_code == 2
