"""bench/reads.py cannot rot: its dataset generator and every read it times run at a tiny size, on SQLite
and PostgreSQL, and each hand-written query fetches the same rows as the service call beside it."""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import read_dataset, reads  # noqa: E402

SIZE = 300


def test_read_bench_generates_its_district_and_every_read_matches_its_hand_written_query_and_explains(db_url):
    counts = read_dataset.generate(db_url, SIZE, template_days=2, log=lambda _m: None)

    assert counts["cases"] == SIZE
    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as conn:
            summary = conn.exec_driver_sql("SELECT SUM(receipts), SUM(received) FROM unit_day_stats").one()
            facts = conn.exec_driver_sql("SELECT SUM(CASE WHEN kind = 'receipt' THEN 1 ELSE 0 END), "
                                         "SUM(CASE WHEN kind = 'received' THEN 1 ELSE 0 END) "
                                         "FROM case_facts").one()
            leftovers = sa.inspect(conn).get_table_names()
    finally:
        eng.dispose()
    assert tuple(summary) == tuple(facts)
    assert "bench_plan" not in leftovers and "bench_unit_map" not in leftovers

    measured = reads.measure(db_url, calls=1, log=lambda _m: None)

    assert set(measured) == set(reads.PARAGRAPHS)
    assert {name for name, m in measured.items() if not m.same_rows} == set()
    assert measured["case_history"].service.rows > 0


    captured = reads.capture(db_url)
    assert set(captured) == set(reads.PARAGRAPHS) and all(captured.values())
    plans = reads.explain(db_url, captured["worklist_department"])
    assert plans and all(plan for _sql, _params, plan in plans)


def test_read_bench_upgrades_a_cached_dataset_behind_the_schema_in_place_instead_of_regenerating(tmp_path):
    from alembic import command

    from gridflow.adapters.db import Database

    url = f"sqlite:///{tmp_path / 'reads.db'}"
    first = read_dataset.ensure(url, SIZE, template_days=2, log=lambda _m: None)
    db = Database(url)
    try:
        command.downgrade(db.alembic_config(), "-1")
        assert db.schema_status()[0] != db.schema_status()[1]

        again = read_dataset.ensure(url, SIZE, template_days=2, log=lambda _m: None)

        assert first.generated_s is not None and again.generated_s is None and again.upgraded
        assert db.schema_status()[0] == db.schema_status()[1]
    finally:
        db.dispose()
