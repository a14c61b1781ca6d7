"""Migration 0006 (read-side indexes) on real SQLite and PostgreSQL: reversible, the storage tables' indexes
exactly, and a worklist arm read in the order of its partial index (SQLite's plan: no sort)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlmodel import SQLModel, select

from gridflow.adapters import orm  # noqa: F401  (the tables, for the metadata)
from gridflow.adapters.db import Database
from gridflow.adapters.orm import CaseRow
from gridflow.service.scopes import OPEN


def _case_indexes(db: Database) -> dict[str, tuple[str, ...]]:
    with db.read_engine.connect() as conn:
        return {i["name"]: tuple(i["column_names"]) for i in sa.inspect(conn).get_indexes("cases")
                if i["name"].startswith("ix_")}  # not the unique constraint's (PostgreSQL lists it)


def test_0006_replaces_the_worklist_indexes_with_partial_ones_on_open_cases_and_back(db_url):
    db = Database(db_url)
    try:
        command.downgrade(db.alembic_config(), "0005")
        before = _case_indexes(db)
        assert before["ix_cases_worklist_due"] == ("holder_unit", "closed", "due_at")
        assert "ix_cases_open_holder" not in before
        command.upgrade(db.alembic_config(), "head")
        after = _case_indexes(db)
        assert after["ix_cases_open_holder"] == ("holder_unit", "due_at", "id")
        assert after["ix_cases_open_co_handling"] == ("due_at", "id", "co_units")
        assert "ix_cases_worklist_due" not in after and "ix_cases_reporter_id" not in after
        table = SQLModel.metadata.tables["cases"]
        assert after == {i.name: tuple(c.name for c in i.columns) for i in table.indexes}
    finally:
        command.upgrade(db.alembic_config(), "head")
        db.dispose()


def test_a_worklist_arm_reads_its_open_case_index_in_order_without_sorting_on_sqlite(sqlite_url):
    db = Database(sqlite_url)
    try:
        for nulls in (False, True):
            due = CaseRow.due_at.is_(None) if nulls else CaseRow.due_at.is_not(None)
            order = (CaseRow.id,) if nulls else (CaseRow.due_at, CaseRow.id)
            query = (select(CaseRow.id).where(OPEN, CaseRow.holder_unit == "dept-housing", due)
                     .order_by(*order).limit(51))
            sql = str(query.compile(db.read_engine, compile_kwargs={"literal_binds": True}))
            with db.read_engine.connect() as conn:
                plan = " | ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "ix_cases_open_holder" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        db.dispose()
