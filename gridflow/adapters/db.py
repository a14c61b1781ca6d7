"""Database engines and schema version checks, for SQLite (embedded) and PostgreSQL (at scale).

SQLite runs in WAL mode. Writes take the lock up front (``BEGIN IMMEDIATE``)
so that two writers queue instead of one failing when it upgrades a read lock;
reads use a separate engine with deferred transactions so worklists never wait
for writers. A writer waits for the lock a short while at most (``write_wait``:
this process's queue and SQLite's busy handler together), and only so many
writers wait at once: when another process holds the lock, writes answer
StoreUnavailable (503, Retry-After) within seconds and never take every
request thread, so reads go on being served.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from ..engine.errors import DataRefused, DuplicateKey, GridflowError, StoreError, StoreUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"
UNAVAILABLE = "the database is unavailable; nothing was changed"
BUSY = "the database is busy with another writer; nothing was changed, try again shortly"
#: Writers of one process that may wait for SQLite's lock at once; more are refused at once (503), so
#: blocked writers never hold all of the API's request threads (Starlette's pool has 40).
MAX_WAITING_WRITERS = 16
#: Seconds a write probe (``Database.probe_write``) waits for the lock.
PROBE_WAIT_S = 0.25
#: Settings of every PostgreSQL session gridflow opens (docs/at-scale.md).
PG_OPTIONS = "-c jit=off"
#: For the reads written as index range scans with a LIMIT (lists and worklists, one query per arm), in
#: that transaction only: PostgreSQL multiplies the selectivities of correlated conditions (a unit and
#: the roles holding its cases), under-estimates the rows an arm matches, and picks a bitmap scan and a
#: sort of every match (60 ms at a million cases) over reading the index in order and stopping at the
#: LIMIT (0.2 ms); parallel workers cost 5–20 ms to start on a query that takes 1–2 ms serially.
_INDEX_ORDER = ("SELECT set_config('enable_bitmapscan', 'off', true), "
                "set_config('max_parallel_workers_per_gather', '0', true)")


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
    if isinstance(exc, (sa_exc.ProgrammingError, sa_exc.NotSupportedError)):
        return None  # a statement gridflow got wrong
    # Operational, internal, interface or plain database errors: locked, full, gone, corrupt.
    return StoreUnavailable(UNAVAILABLE, cause=str(exc.orig), retry_after=1)


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


def _busy_timeout(connection: sa.Connection, seconds: float) -> None:
    """How long SQLite's busy handler lets this connection's next statement wait for a lock."""
    with _listener_errors():
        connection.connection.dbapi_connection.execute(f"PRAGMA busy_timeout={max(0, int(seconds * 1000))}")


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


class WriterQueue:
    """SQLite takes one writer at a time: this process's writers queue here, in order, instead of
    colliding inside SQLite and backing off in its busy handler's sleeps.

    Each writer waits at most ``wait`` seconds in all — for this queue, then (what is left of it) for
    SQLite's own lock, which another process may hold — and at most ``max_waiting`` writers wait at
    once. Either limit passed is StoreUnavailable with ``retry_after``. Re-entrant: a writer already
    holding the queue (a nested unit of work) passes.
    """

    def __init__(self, wait: float, max_waiting: int = MAX_WAITING_WRITERS) -> None:
        self.wait = wait
        self.max_waiting = max_waiting
        self._lock = threading.RLock()
        self._count = threading.Lock()
        self._waiting = 0
        self._local = threading.local()

    def acquire(self, wait: float | None = None) -> None:
        """Queue up (``wait`` seconds at most instead of the usual, e.g. for a health probe)."""
        wait = self.wait if wait is None else wait
        local = self._local
        if self._lock.acquire(blocking=False):
            if getattr(local, "depth", 0) == 0:
                local.deadline = time.monotonic() + wait
            local.depth = getattr(local, "depth", 0) + 1
            return
        with self._count:
            if self._waiting >= self.max_waiting:
                raise StoreUnavailable(BUSY, retry_after=self.retry_after, waiting=self._waiting)
            self._waiting += 1
        deadline = time.monotonic() + wait
        try:
            got = self._lock.acquire(timeout=wait)
        finally:
            with self._count:
                self._waiting -= 1
        if not got:
            raise StoreUnavailable(BUSY, retry_after=self.retry_after)
        local.deadline, local.depth = deadline, 1

    def release(self) -> None:
        self._local.depth -= 1
        self._lock.release()

    def remaining(self) -> float:
        """Seconds this thread's writer may still wait for SQLite's lock (the whole wait if not queued)."""
        if getattr(self._local, "depth", 0) == 0:
            return self.wait
        return max(0.0, self._local.deadline - time.monotonic())

    @property
    def retry_after(self) -> int:
        return max(1, round(self.wait))

    @contextmanager
    def held(self, wait: float | None = None) -> Iterator[None]:
        self.acquire(wait)
        try:
            yield
        finally:
            self.release()


class Database:
    def __init__(self, url: str, *, busy_timeout: float = 30.0, write_wait: float = 3.0,
                 max_waiting_writers: int = MAX_WAITING_WRITERS) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.busy_timeout = busy_timeout
        self.write_wait = write_wait
        #: SQLite's writers, one at a time (see :class:`WriterQueue`). None on PostgreSQL, whose writers
        #: run side by side.
        self.writers = WriterQueue(write_wait, max_waiting_writers) if self.is_sqlite else None
        self._probe_lock = threading.Lock()
        self._probed: tuple[float, str | None] = (float("-inf"), None)
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(url, immediate=True, busy_timeout=write_wait)
            self.read_engine = _sqlite_engine(url, immediate=False, busy_timeout=busy_timeout)
        else:
            # No pre-ping (a round trip per transaction): a connection that died with the server fails
            # once, SQLAlchemy then invalidates the pool, and callers retry (timer runners do; the API
            # answers 503 with Retry-After).
            # JIT compilation costs ~70 ms per big query and gains nothing on gridflow's short ones.
            self.write_engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800,
                                                 json_serializer=_compact_json,
                                                 connect_args={"options": PG_OPTIONS})
            _translate_errors(self.write_engine)
            self.read_engine = self.write_engine

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    def session(self, write: bool = True) -> Session:
        return Session(self.write_engine if write else self.read_engine, expire_on_commit=False)

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A connection to read on (on SQLite a deferred transaction: it never waits for, nor takes, the
        write lock); write with :meth:`writing` or a unit of work."""
        try:
            with _ours(self.read_engine) as conn:
                yield conn
        except (sa_exc.OperationalError, StoreUnavailable) as exc:
            if isinstance(exc, StoreUnavailable) and exc.cause is None:
                raise
            raise StoreUnavailable(f"database unreachable: {_cause(exc)}") from exc

    def begin(self, write: bool = True) -> tuple[sa.Connection, sa.RootTransaction]:
        """A connection in a new transaction (SQLite writers: ``BEGIN IMMEDIATE``, waiting what is left
        of this writer's ``write_wait``), or StoreUnavailable."""
        try:
            connection = _ours(self.write_engine if write else self.read_engine)
        except (sa_exc.OperationalError, StoreUnavailable) as exc:
            raise StoreUnavailable(f"database unreachable: {_cause(exc)}", retry_after=1) from exc
        try:
            if write and self.writers is not None:
                _busy_timeout(connection, self.writers.remaining())
            return connection, connection.begin()
        except (sa_exc.OperationalError, StoreUnavailable) as exc:  # e.g. SQLite's BEGIN IMMEDIATE timing out
            connection.close()
            raise StoreUnavailable(f"database unreachable or locked, nothing was changed: {_cause(exc)}",
                                   retry_after=self._retry_after) from exc

    def prefer_index_order(self, connection: sa.Connection) -> None:
        """Plan this transaction's reads as index-ordered range scans (see ``_INDEX_ORDER``); SQLite's
        planner already does, so there it is nothing."""
        if not self.is_sqlite:
            connection.exec_driver_sql(_INDEX_ORDER)

    @property
    def _retry_after(self) -> int:
        return self.writers.retry_after if self.writers is not None else 1

    @contextmanager
    def writing(self, wait: float | None = None) -> Iterator[sa.Connection]:
        """One write transaction outside a unit of work (timer claims, the outbox), committed when the
        block ends; on SQLite queued with this process's other writers, waiting ``write_wait`` (or
        ``wait``) seconds at most."""
        queue = self.writers
        if queue is not None:
            queue.acquire(wait)
        try:
            connection, tx = self.begin(write=True)
            with connection:
                try:
                    yield connection
                except BaseException:
                    if tx.is_active:
                        tx.rollback()
                    raise
                tx.commit()
        finally:
            if queue is not None:
                queue.release()

    def probe_write(self, max_age: float = 0.0) -> str | None:
        """None when a write transaction can commit now, else why not (the driver's words).

        A no-op write (``UPDATE alembic_version`` to itself) committed under the usual short wait: it
        needs the write lock and room for one more WAL frame or page, as every change does. The answer
        is kept ``max_age`` seconds, so health checks arriving together probe once. It waits
        ``PROBE_WAIT_S`` for the lock at most: a health check must answer quickly, locked or not.
        """
        with self._probe_lock:
            at, answer = self._probed
            if time.monotonic() - at < max_age:
                return answer
            try:
                with self.writing(min(self.write_wait, PROBE_WAIT_S)) as conn:
                    if not self.is_sqlite:  # PostgreSQL: a lock on the row is waited for as briefly
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(PROBE_WAIT_S * 1000)}ms'")
                    conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
                answer = None
            except StoreError as exc:
                answer = exc.cause or exc.message
            self._probed = (time.monotonic(), answer)
            return answer

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
