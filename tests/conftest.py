"""Shared fixtures: real SQLite and real PostgreSQL (never faked), a manual clock, a wired app.

PostgreSQL: each test run creates its own database (dropped at the end), so runs
never collide; tests truncate between them. Redis: each run uses its own key
prefix. If PostgreSQL or Redis cannot be reached the tests that need them fail —
they never skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from hypothesis import HealthCheck, settings as hypothesis_settings

from gridflow.engine.clock import ManualClock

# CI runs the same examples every time (a red CI must mean a change broke something, not a new draw)
# and never fails on timing under load; locally hypothesis keeps exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

PG_ADMIN_URL = os.environ.get("GRIDFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GRIDFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]
#: Wednesday 2026-09-30 08:00 Asia/Shanghai: the day before the National Day holiday week.
START = datetime(2026, 9, 30, 0, 0, tzinfo=timezone.utc)


def _pg_url(dbname: str) -> str:
    return sa.engine.make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)


def _admin_exec(sql: str) -> None:
    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql(sql)
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} cannot be reached (start it; tests never skip it): "
                    f"{exc.orig}")
    finally:
        eng.dispose()


@pytest.fixture(scope="session")
def pg_database_url():
    """A PostgreSQL database of this test run's own, migrated once, dropped at the end."""
    name = f"gridflow_test_{RUN_ID}_{os.getpid()}"
    _admin_exec(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    from gridflow.adapters.db import Database

    db = Database(url)
    db.upgrade()
    db.dispose()
    yield url
    _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file that tests copy instead of migrating each time."""
    from gridflow.adapters.db import Database

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()  # the last connection to close checkpoints the WAL into the main file
    return path


def _truncate_pg(url: str) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        tables = [r[0] for r in conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'")]
        if tables:
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                                 + " RESTART IDENTITY CASCADE")
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path, sqlite_template) -> str:
    """Parametrised: every test using it runs on real SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return _copy_template(sqlite_template, tmp_path)
    url = request.getfixturevalue("pg_database_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    return _copy_template(sqlite_template, tmp_path)


def _copy_template(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "gridflow.db"
    shutil.copy(template, path)
    for suffix in ("-wal", "-shm"):
        side = template.with_name(template.name + suffix)
        if side.exists():
            shutil.copy(side, path.with_name(path.name + suffix))
    return f"sqlite:///{path}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def make_app(clock):
    """Build a wired app (inline timer runner, demo organisation seeded) on a given database URL."""
    from gridflow.bootstrap import bootstrap
    from gridflow.settings import Settings

    apps = []

    def make(url: str, **settings):
        settings.setdefault("seed_demo", True)
        app = bootstrap(Settings(database_url=url, environment="test", **settings), clock, runner="inline")
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app, db_url):
    return make_app(db_url)


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"gridflow-test-{RUN_ID}"


@pytest.fixture(scope="session")
def redis_url(redis_prefix):
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis at {REDIS_URL} cannot be reached (start it; tests never skip it): {exc}")
    yield REDIS_URL
    for key in client.scan_iter(f"{redis_prefix}*"):
        client.delete(key)
    client.close()
