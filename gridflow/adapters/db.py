"""Database engines and schema version checks, for SQLite (embedded) and PostgreSQL (at scale).

SQLite runs in WAL mode. Writes take the lock up front (``BEGIN IMMEDIATE``)
so that two writers queue on the busy timeout instead of one failing when it
upgrades a read lock; reads use a separate engine with deferred transactions
so worklists never wait for writers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from ..engine.errors import DataRefused, DuplicateKey, GridflowError, StoreUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"
UNAVAILABLE = "the database is unavailable; nothing was changed"


class SchemaMismatch(GridflowError):
    code = "schema_mismatch"
    status = 503


def _compact_json(value) -> str:
    # Compact UTF-8 JSON: Chinese text stays 3 bytes a character instead of 6 as \\u escapes.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def store_error(exc: sa_exc.DBAPIError) -> Exception | None:
    """gridflow's own error for SQLAlchemy's, or None when it is a bug (the layers above never see the
    ORM's or the driver's exception types)."""
    if isinstance(exc, sa_exc.IntegrityError):
        return DuplicateKey("a row with the same key already exists", cause=str(exc.orig))
    if isinstance(exc, sa_exc.DataError):
        return DataRefused("the database refused a value in this request", cause=str(exc.orig))
    if isinstance(exc, sa_exc.OperationalError):
        return StoreUnavailable(UNAVAILABLE, cause=str(exc.orig), retry_after=1)
    return None


def _translate_errors(eng: Engine) -> None:
    """Statements gridflow runs (on connections from ``Database.begin``/``connect``, ORM flushes
    included) fail as gridflow's own errors; SQLAlchemy still invalidates a dead connection first.
    Connections others open on the engine (migrations, tests) keep SQLAlchemy's errors."""

    @event.listens_for(eng, "handle_error")
    def _on_error(ctx) -> None:
        conn, exc = ctx.connection, ctx.sqlalchemy_exception
        if conn is None or exc is None or conn not in _OURS:
            return
        translated = store_error(exc)
        if translated is not None:
            raise translated from exc


#: The connections gridflow opened (``Database.begin`` and ``connect``), while they are open.
_OURS: weakref.WeakSet[sa.Connection] = weakref.WeakSet()


def _ours(engine: Engine) -> sa.Connection:
    conn = engine.connect()
    _OURS.add(conn)
    return conn


def _cause(exc: BaseException) -> str:
    return exc.cause if isinstance(exc, StoreUnavailable) else str(getattr(exc, "orig", exc))


@contextmanager
def _listener_errors() -> Iterator[None]:
    """Driver errors in our own connection listeners (SQLAlchemy passes them on raw)."""
    try:
        yield
    except sqlite3.Error as exc:  # e.g. BEGIN IMMEDIATE or a pragma meeting a locked database
        raise StoreUnavailable(UNAVAILABLE, cause=str(exc), retry_after=1) from exc


def _sqlite_engine(url: str, immediate: bool, busy_timeout: float) -> Engine:
    u = make_url(url)
    if u.database and u.database != ":memory:":
        Path(u.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    eng = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout},
                           pool_size=8, max_overflow=16, json_serializer=_compact_json)

    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        with _listener_errors():
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(eng, "begin")
    def _on_begin(conn) -> None:
        try:
            conn.connection.dbapi_connection.execute(begin)
        except sqlite3.Error as exc:  # BEGIN IMMEDIATE meeting a locked database: SQLAlchemy passes it on raw
            raise StoreUnavailable(UNAVAILABLE, cause=str(exc), retry_after=1) from exc

    _translate_errors(eng)
    return eng


class Database:
    def __init__(self, url: str, *, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.busy_timeout = busy_timeout
        #: SQLite takes one writer at a time: this process's writers queue on a lock, in order, instead
        #: of colliding inside SQLite and backing off in its busy handler's sleeps. None on PostgreSQL,
        #: whose writers run side by side.
        self.write_lock = threading.RLock() if url.startswith("sqlite") else None
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(url, immediate=True, busy_timeout=busy_timeout)
            self.read_engine = _sqlite_engine(url, immediate=False, busy_timeout=busy_timeout)
        else:
            # No pre-ping (a round trip per transaction): a connection that died with the server fails
            # once, SQLAlchemy then invalidates the pool, and callers retry (timer runners do; the API
            # answers 503 with Retry-After).
            self.write_engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800,
                                                 json_serializer=_compact_json)
            _translate_errors(self.write_engine)
            self.read_engine = self.write_engine

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    def session(self, write: bool = True) -> Session:
        return Session(self.write_engine if write else self.read_engine, expire_on_commit=False)

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        try:
            with _ours(self.write_engine) as conn:
                yield conn
        except (sa_exc.OperationalError, StoreUnavailable) as exc:
            if isinstance(exc, StoreUnavailable) and exc.cause is None:
                raise
            raise StoreUnavailable(f"database unreachable: {_cause(exc)}") from exc

    def begin(self, write: bool = True) -> tuple[sa.Connection, sa.RootTransaction]:
        """A connection in a new transaction (SQLite writers: ``BEGIN IMMEDIATE``), or StoreUnavailable."""
        try:
            connection = _ours(self.write_engine if write else self.read_engine)
        except (sa_exc.OperationalError, StoreUnavailable) as exc:
            raise StoreUnavailable(f"database unreachable: {_cause(exc)}", retry_after=1) from exc
        try:
            return connection, connection.begin()
        except (sa_exc.OperationalError, StoreUnavailable) as exc:  # e.g. SQLite's BEGIN IMMEDIATE timing out
            connection.close()
            raise StoreUnavailable(f"database unreachable or locked, nothing was changed: {_cause(exc)}",
                                   retry_after=1) from exc

    def ping(self) -> bool:
        try:
            with self.read_engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except (sa_exc.OperationalError, StoreUnavailable):
            return False

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()

    # --- schema -------------------------------------------------------------------------------

    def alembic_config(self):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["engine"] = self.write_engine
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        from alembic import command

        command.upgrade(self.alembic_config(), revision)

    def schema_status(self) -> tuple[str | None, str]:
        """(revision the database is at, revision the code expects)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self.alembic_config()).get_current_head()
        try:
            with self.read_engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except (sa_exc.OperationalError, StoreUnavailable) as exc:
            raise StoreUnavailable(f"database unreachable at {self.safe_url}: {_cause(exc)}") from exc
        return current, head

    def is_empty(self) -> bool:
        try:
            with self.read_engine.connect() as conn:
                return not sa.inspect(conn).get_table_names()
        except (sa_exc.OperationalError, StoreUnavailable) as exc:
            raise StoreUnavailable(f"database unreachable at {self.safe_url}: {_cause(exc)}") from exc

    def check_schema(self) -> None:
        """Refuse to run against a database that is behind or ahead of the code."""
        from alembic.script import ScriptDirectory

        current, head = self.schema_status()
        if current == head:
            return
        if current is None:
            raise SchemaMismatch(f"database {self.safe_url} has no gridflow schema; "
                                 "run `gridflow db upgrade`",
                                 current=None, expected=head)
        script = ScriptDirectory.from_config(self.alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        if current not in known:
            raise SchemaMismatch(
                f"database {self.safe_url} is at revision {current}, newer than this code ({head}); "
                "upgrade gridflow to a release that knows it", current=current, expected=head)
        raise SchemaMismatch(f"database {self.safe_url} is at revision {current}, behind the code ({head}); "
                             "run `gridflow db upgrade`", current=current, expected=head)

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)
