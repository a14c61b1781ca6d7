"""Schema checks at start, workflow versions stored as they were, corrupted snapshots reported."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from gridflow.adapters.db import Database, SchemaMismatch
from gridflow.engine.errors import StoreUnavailable
from gridflow.bootstrap import bootstrap
from gridflow.engine.errors import DefinitionError
from gridflow.service.catalog import SHIPPED_DIR
from gridflow.settings import Settings
from tests.integration.helpers import report, snapshot


def test_empty_sqlite_database_is_created_on_first_start(tmp_path, clock):
    app = bootstrap(Settings(database_url=f"sqlite:///{tmp_path}/new/gridflow.db"), clock, runner="none")
    try:
        assert app.services.db.schema_status()[0] == app.services.db.schema_status()[1]
    finally:
        app.close()


def test_database_without_schema_is_refused_with_the_command_to_run(pg_database_url, clock):
    url = sa.engine.make_url(pg_database_url)
    # A second, empty database of this run's own.
    name = url.database + "_empty"
    admin = sa.create_engine(pg_database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    try:
        with pytest.raises(SchemaMismatch, match="gridflow db upgrade"):
            bootstrap(Settings(database_url=url.set(database=name).render_as_string(False)), clock,
                      runner="none")
    finally:
        admin = sa.create_engine(pg_database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.mark.parametrize("sql,expected", [
    ("UPDATE alembic_version SET version_num = 'ffff_from_a_newer_release'", "newer than this code"),
    ("DELETE FROM alembic_version", "run `gridflow db upgrade`"),
])
def test_database_ahead_or_behind_the_code_is_refused(sqlite_url, clock, sql, expected):
    db = Database(sqlite_url)
    with db.write_engine.begin() as conn:
        conn.exec_driver_sql(sql)
    db.dispose()
    with pytest.raises(SchemaMismatch, match=expected):
        bootstrap(Settings(database_url=sqlite_url), clock, runner="none")


def test_unreachable_database_is_a_clear_error(clock):
    with pytest.raises(StoreUnavailable, match="unreachable"):
        bootstrap(Settings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/none"), clock,
                  runner="none")


def test_changed_definition_without_new_version_is_refused(make_app, db_url, tmp_path, clock):
    make_app(db_url)  # stores the shipped versions
    custom = tmp_path / "wf"
    custom.mkdir()
    text = (SHIPPED_DIR / "grid_event.yaml").read_text(encoding="utf-8")
    (custom / "grid_event_local.yaml").write_text(text.replace("duration: 16wh", "duration: 8wh"),
                                                  encoding="utf-8")
    with pytest.raises(DefinitionError, match="new version number|different content"):
        make_app(db_url, workflows_dir=custom)


def _next_version(text: str) -> tuple[str, int, int]:
    """The shipped grid_event text as the next version, with the shipped and the next version numbers."""
    shipped = int(re.search(r"^version: (\d+)$", text, re.M).group(1))
    return text.replace(f"version: {shipped}\n", f"version: {shipped + 1}\n", 1), shipped, shipped + 1


def test_cases_stay_on_their_version_and_new_cases_take_the_newest(make_app, db_url, tmp_path):
    app = make_app(db_url)
    old = report(app.services)
    custom = tmp_path / "wf"
    custom.mkdir()
    text, shipped, nxt = _next_version((SHIPPED_DIR / "grid_event.yaml").read_text(encoding="utf-8"))
    (custom / "grid_event_next.yaml").write_text(text.replace("duration: 16wh", "duration: 8wh"),
                                                 encoding="utf-8")
    app2 = make_app(db_url, workflows_dir=custom)
    new = report(app2.services)
    assert snapshot(app2.services, old.number)[0].workflow_version == shipped
    assert snapshot(app2.services, new.number)[0].workflow_version == nxt
    # A process that no longer ships the next version still runs its cases from the stored definition.
    app3 = make_app(db_url)
    assert app3.services.catalog.get("grid_event", nxt).version == nxt


def test_corrupted_definition_snapshot_is_reported_not_replaced(make_app, db_url, tmp_path):
    app = make_app(db_url)
    custom = tmp_path / "wf"
    custom.mkdir()
    text, _, nxt = _next_version((SHIPPED_DIR / "grid_event.yaml").read_text(encoding="utf-8"))
    (custom / "next.yaml").write_text(text, encoding="utf-8")
    make_app(db_url, workflows_dir=custom)
    with app.services.db.write_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE workflow_versions "
                             f"SET source_text = 'name: grid_event\nversion: {nxt}\n' "
                             f"WHERE name = 'grid_event' AND version = {nxt}")
    app3 = make_app(db_url)
    assert ("grid_event", nxt) in app3.services.catalog.corrupted
    with pytest.raises(DefinitionError, match="corrupted"):
        app3.services.catalog.get("grid_event", nxt)
    with app.services.db.read_engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT source_text FROM workflow_versions "
                                      f"WHERE name = 'grid_event' AND version = {nxt}").scalar()
    assert stored.startswith(f"name: grid_event\nversion: {nxt}\n")  # left as found, for a human to look at


def test_migrate_moves_open_cases_to_a_new_version_and_records_it(make_app, db_url, tmp_path):
    from gridflow.service.migration import migrate_cases
    from tests.integration.helpers import DISPATCHER, act, dispatched_case

    app = make_app(db_url)
    open_case = dispatched_case(app.services)
    closed = report(app.services)
    act(app.services, closed.number, "reject", DISPATCHER, {"reason": "不属于受理范围"})
    custom = tmp_path / "wf"
    custom.mkdir()
    text, shipped, nxt = _next_version((SHIPPED_DIR / "grid_event.yaml").read_text(encoding="utf-8"))
    v2 = text.replace("  dispatched:\n", "  awaiting_ack:\n") \
        .replace("to: dispatched", "to: awaiting_ack").replace("from: [dispatched]", "from: [awaiting_ack]") \
        .replace("from: [dispatched, handling]", "from: [awaiting_ack, handling]") \
        .replace("from: [reported, street_triage, dispatched,",
                 "from: [reported, street_triage, awaiting_ack,")
    (custom / "grid_event_v2.yaml").write_text(v2, encoding="utf-8")
    app2 = make_app(db_url, workflows_dir=custom)
    from gridflow.engine.errors import PayloadInvalid
    with pytest.raises(PayloadInvalid, match="--map dispatched="):
        migrate_cases(app2.services, "grid_event", nxt, {})
    assert snapshot(app2.services, open_case)[0].workflow_version == shipped  # refused: nothing moved
    moved = migrate_cases(app2.services, "grid_event", nxt, {"dispatched": "awaiting_ack"})
    assert moved == 1
    row, events, timers = snapshot(app2.services, open_case)
    assert (row.workflow_version, row.state) == (nxt, "awaiting_ack")
    migrated = [e for e in events if e.type == "WorkflowMigrated"]
    assert migrated and migrated[0].data["from_state"] == "dispatched"
    # the state's limits start afresh: signing for, and the handling limit that counts from dispatch
    assert {t.deadline_id.split(".")[0] for t in timers} == {"acknowledge", "handle"}
    assert snapshot(app2.services, closed.number)[0].workflow_version == shipped  # closed cases stay
    from gridflow.service.audit import verify_case
    assert verify_case(app2.services, open_case).ok
