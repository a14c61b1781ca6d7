"""Migration 0002 (API key expiry, runtime state): a database at 0001 is refused until upgraded, keeps its
keys, and afterwards matches the storage tables exactly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from gridflow.adapters import orm  # noqa: F401  (the tables, for the metadata)
from gridflow.adapters.db import Database, SchemaMismatch
from gridflow.bootstrap import bootstrap
from gridflow.service.auth import authenticate
from gridflow.service.tokens import hash_token
from gridflow.settings import Settings


def _at_0001_with_a_key(url: str) -> None:
    db = Database(url)
    command.downgrade(db.alembic_config(), "0001")
    with db.write_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, name, role, active) VALUES ('old-admin', '老管理员', "
                             "'admin', :t)"), {"t": True})
        conn.execute(sa.text("INSERT INTO api_keys (user_id, key_hash, label, created_at) "
                             "VALUES ('old-admin', :h, 'from 0001', CURRENT_TIMESTAMP)"),
                     {"h": hash_token("old-key")})
    db.dispose()


def test_a_database_at_0001_is_refused_then_upgraded_and_keeps_its_keys(db_url, clock):
    _at_0001_with_a_key(db_url)
    with pytest.raises(SchemaMismatch, match="behind the code.*gridflow db upgrade"):
        bootstrap(Settings(database_url=db_url, environment="test"), clock, runner="none")
    db = Database(db_url)
    db.upgrade()
    with db.read_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    db.dispose()
    assert [d for d in diff if "api_keys" in repr(d) or "runtime_state" in repr(d)] == []
    app = bootstrap(Settings(database_url=db_url, environment="test"), clock, runner="none")
    try:
        assert authenticate(app.services, "old-key").id == "old-admin"  # no expiry: it never expires
    finally:
        app.close()
