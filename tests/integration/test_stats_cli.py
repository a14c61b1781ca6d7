"""``gridflow stats rebuild`` on a real SQLite file: one transaction, counts printed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from gridflow.cli import app as cli
from tests.integration.helpers import DISPATCHER, HOUSING, act, report


def test_stats_rebuild_recomputes_the_facts_from_history_and_prints_counts(make_app, sqlite_url):
    gf = make_app(sqlite_url)
    number = report(gf.services).number
    act(gf.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(gf.services, number, "acknowledge", HOUSING)
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        written = conn.execute(sa.text("select count(*) from case_facts")).scalar_one()
        conn.execute(sa.text("delete from case_facts"))  # as a database upgraded to 0004 starts
    gf.close()
    result = CliRunner().invoke(cli, ["stats", "rebuild", "--db", sqlite_url.removeprefix("sqlite:///")])
    assert result.exit_code == 0, result.output
    assert "1 case(s)" in result.output and f"{written} fact(s)" in result.output
    assert "receipt" in result.output
    with engine.begin() as conn:
        assert conn.execute(sa.text("select count(*) from case_facts")).scalar_one() == written
    engine.dispose()
    assert Path(sqlite_url.removeprefix("sqlite:///")).exists()
