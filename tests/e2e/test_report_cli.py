"""``gridflow report sla`` on a real SQLite file: the terminal table, a CSV spreadsheets open with the
Chinese intact and no formula, a self-contained HTML page with its chart, a PNG chart, clear errors."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from gridflow.cli import app as cli
from gridflow.service import reports
from gridflow.service.stats import SlaReport, UnitStats
from tests.integration.helpers import DISPATCHER, HOUSING, act, report


@pytest.fixture
def city(make_app, sqlite_url, monkeypatch):
    monkeypatch.delenv("GRIDFLOW_DATABASE_URL", raising=False)
    gf = make_app(sqlite_url)
    for _ in range(2):
        number = report(gf.services).number
        act(gf.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
        act(gf.services, number, "acknowledge", HOUSING)
    gf.close()
    return sqlite_url.removeprefix("sqlite:///")


def run(*args: str):
    return CliRunner().invoke(cli, ["report", "sla", *args], catch_exceptions=False, terminal_width=80)


def test_the_table_shows_each_units_rates_and_the_total(city):
    out = run("--db", city, "--from", "2026-09-01", "--to", "2026-09-30")
    assert out.exit_code == 0, out.output
    assert "区住建局" in out.output and "合计" in out.output and "100.0%" in out.output
    assert "2026-09-01 — 2026-09-30" in out.output
    assert max(len(line) for line in out.output.splitlines()) <= 80
    empty = run("--db", city, "--from", "2027-01-01", "--to", "2027-01-31")
    assert empty.exit_code == 0 and "no figures in this period" in empty.output


def test_csv_has_a_bom_every_figure_and_the_rates(city, tmp_path):
    path = tmp_path / "sla.csv"
    out = run("--db", city, "--format", "csv", "-o", str(path))
    assert out.exit_code == 0, out.output
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("period_from,period_to,unit,name,kind,receipts")
    housing = next(line for line in lines if line.split(",")[2] == "dept-housing")
    assert "区住建局" in housing and housing.endswith(",1.0,,")  # responded; nothing resolved or rated


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_neutralised():
    sneaky = UnitStats("u1", "=HYPERLINK(\"http://x\")", "community", {"received": 1})
    text = reports.to_csv(SlaReport(None, None, [sneaky], UnitStats(None, "合计", "total", {})))
    assert "'=HYPERLINK" in text.decode("utf-8-sig")


def test_html_is_one_self_contained_page_with_the_chart(city, tmp_path):
    path = tmp_path / "sla.html"
    assert run("--db", city, "--format", "html", "-o", str(path)).exit_code == 0
    page = path.read_text(encoding="utf-8")
    assert "<svg" in page and "区住建局" in page and "响应率" in page
    assert not re.search(r'(?:src|href)\s*=\s*["\'](?:https?:)?//', page)
    assert "<link" not in page and "<script" not in page


def test_png_is_a_chart_file(city, tmp_path):
    path = tmp_path / "sla.png"
    out = run("--db", city, "--format", "png", "-o", str(path))
    assert out.exit_code == 0, out.output
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and path.stat().st_size > 5000


@pytest.mark.parametrize("args, message", [
    (("--from", "2026-13-01"), "--from '2026-13-01' is not a date"),
    (("--unit", "nope"), "--unit 'nope': no such unit"),
])
def test_bad_options_are_refused_with_a_message(city, args, message):
    out = run("--db", city, *args)
    assert out.exit_code == 2 and message in out.output
