"""A locked or failing store fails fast and honestly, the outbox never sends twice, health tells the truth.

Real SQLite and PostgreSQL; "another process holding the lock" is another connection here (the same
file lock; the slow suite in tests/production/test_store_outages.py uses real processes).
"""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridflow.adapters.db import store_error
from gridflow.adapters.notifiers import WebhookNotifier
from gridflow.adapters.orm import OutboxRow
from gridflow.api.app import create_app
from gridflow.engine.errors import StoreUnavailable
from gridflow.processes.outbox import LEASE_S, dispatch_outbox

from .helpers import DISPATCHER, act, report, snapshot

FAST = {"sqlite_busy_timeout": 0.2, "sqlite_write_wait": 0.2}


class HeldLock:
    """Another connection holding the write lock: SQLite's (``BEGIN IMMEDIATE``) or, on PostgreSQL,
    an exclusive lock on one table."""

    def __init__(self, url: str, table: str = "outbox") -> None:
        self.url, self.table = url, table
        self._release: list = []

    def take(self) -> None:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None, timeout=5,
                                   check_same_thread=False)
            conn.execute("BEGIN IMMEDIATE")
            self._release = [lambda: conn.execute("ROLLBACK"), conn.close]
        else:
            eng = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
            conn = eng.connect()
            conn.begin()
            conn.exec_driver_sql(f"LOCK TABLE {self.table} IN EXCLUSIVE MODE")
            self._release = [conn.rollback, conn.close, eng.dispose]

    def release(self) -> None:
        steps, self._release = self._release, []
        for step in steps:
            step()

    def __enter__(self) -> "HeldLock":
        self.take()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# --- 1. a write that cannot get the lock is refused within the short write wait ----------------------

def test_a_write_meeting_a_held_sqlite_lock_is_refused_within_the_write_wait(make_app, sqlite_url):
    app = make_app(sqlite_url, sqlite_write_wait=0.3)  # the busy timeout stays at its 30 s default
    number = report(app.services).number
    with HeldLock(sqlite_url):
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as exc:
            act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"})
        waited = time.monotonic() - start
        assert snapshot(app.services, number)[0].state == "reported", "reads go on while the lock is held"
    assert waited < 1.5, f"a write waited {waited:.1f}s for a lock, not the 0.3 s write wait"
    assert exc.value.status == 503 and exc.value.details["retry_after"] >= 1
    assert act(app.services, number, "dispatch", DISPATCHER, {"department": "dept-housing"}).state \
        == "dispatched"


def test_reads_never_wait_for_a_held_sqlite_write_lock(make_app, sqlite_url, clock):
    from gridflow.adapters.outbox import SqlOutbox
    from gridflow.adapters.timer_store import SqlTimerStore
    from gridflow.service.health import timer_backlog

    app = make_app(sqlite_url)  # 30 s busy timeout, 3 s write wait: a read that waited would show
    number = report(app.services).number
    svc = app.services
    reads = {"case": lambda: snapshot(svc, number), "backlog": lambda: timer_backlog(svc),
             "outbox due": lambda: SqlOutbox(svc.db).has_due(clock.now()),
             "timers due": lambda: SqlTimerStore(svc.db).unattended(clock.now(), 10),
             "timer ids": lambda: SqlTimerStore(svc.db).max_id(), "ping": svc.db.ping}
    with HeldLock(sqlite_url):
        for name, read in reads.items():
            start = time.monotonic()
            read()
            assert time.monotonic() - start < 0.5, f"{name} waited for the write lock"


def test_writers_beyond_the_waiting_limit_are_refused_at_once():
    from gridflow.adapters.db import WriterQueue

    queue = WriterQueue(wait=5.0, max_waiting=2)
    held, done = threading.Event(), threading.Event()

    def holder() -> None:  # one writer holds the queue (waiting for SQLite's lock, say)
        with queue.held():
            held.set()
            done.wait(10)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    held.wait(5)

    def waiter() -> None:
        with queue.held():
            pass

    threads += [threading.Thread(target=waiter) for _ in range(2)]
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 2
    while queue._waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as exc:
        queue.acquire()
    assert time.monotonic() - start < 0.1 and exc.value.details["retry_after"] >= 1
    done.set()
    for t in threads:
        t.join(5)
    with queue.held():  # the queue works on once the others are through
        pass


# --- 2. every database error is StoreUnavailable --------------------------------------------------

def test_every_database_error_that_is_not_a_bug_is_store_unavailable():
    for cls in (sa.exc.OperationalError, sa.exc.DatabaseError, sa.exc.InternalError, sa.exc.InterfaceError):
        translated = store_error(cls("UPDATE outbox", {}, sqlite3.DatabaseError("database disk image is "
                                                                                  "malformed")))
        assert isinstance(translated, StoreUnavailable), cls
        assert translated.status == 503 and "malformed" in translated.cause
    assert store_error(sa.exc.ProgrammingError("SELEC 1", {}, Exception("syntax error"))) is None


def test_a_lock_met_by_the_outbox_and_the_timer_store_is_store_unavailable(make_app, sqlite_url, clock):
    from gridflow.adapters.outbox import Delivery, SqlOutbox
    from gridflow.adapters.timer_store import SqlTimerStore

    app = make_app(sqlite_url, **FAST)
    with HeldLock(sqlite_url):
        with pytest.raises(StoreUnavailable):
            SqlOutbox(app.services.db).record([Delivery(1, "sent", 1, clock.now())])
        with pytest.raises(StoreUnavailable):
            SqlOutbox(app.services.db).claim(clock.now(), 10, 60)
        with pytest.raises(StoreUnavailable):
            SqlTimerStore(app.services.db).claim(clock.now(), "runner", 60)
        with pytest.raises(StoreUnavailable):
            app.runner.run_due()
    assert app.runner.status.consecutive_failures == 1


# --- 3. the outbox records delivery until it sticks: a lock after sending sends nothing twice ----------

class DedupingReceiver:
    """A webhook that drops repeats by Idempotency-Key (and counts them); its first request takes a
    lock on the database that a timer releases ``hold_s`` later — a lock between send and record."""

    def __init__(self, lock: HeldLock, hold_s: float) -> None:
        self.lock, self.hold_s = lock, hold_s
        self.keys: set[str] = set()
        self.repeats = 0
        self.mutex = threading.Lock()
        self.releaser: threading.Timer | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.mutex:
            if not self.keys and not self.repeats:
                self.lock.take()
                self.releaser = threading.Timer(self.hold_s, self.lock.release)
                self.releaser.start()
            key = request.headers["Idempotency-Key"]
            if key in self.keys:
                self.repeats += 1
            self.keys.add(key)
        return httpx.Response(204)

    def notifier(self) -> WebhookNotifier:
        return WebhookNotifier("http://receiver.test/hook",
                               client=httpx.Client(transport=httpx.MockTransport(self)))


def _outbox_statuses(app) -> list[str]:
    t = OutboxRow.__table__
    with app.services.db.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(t.c.status).order_by(t.c.id))]


def test_a_lock_after_sending_sends_no_notification_twice(make_app, db_url, clock):
    from tests.production.support import DEADLINE, WORKFLOWS
    from tests.production.support import DISPATCHER as DRILL_DISPATCHER
    from gridflow.service.intake import ReportCase, report_case

    app = make_app(db_url, workflows_dir=WORKFLOWS, **FAST)
    for i in range(6):
        report_case(app.services, ReportCase("fault_drill", DRILL_DISPATCHER, category="C0101",
                                             title=f"c{i}"))
    clock.advance(DEADLINE)
    app.runner.run_due()  # 6 breaches, 6 escalations: 12 notifications in the outbox
    receiver = DedupingReceiver(HeldLock(db_url), hold_s=1.0)  # 5× the write wait
    try:
        report = dispatch_outbox(app.services, [receiver.notifier()])
    except StoreUnavailable:
        report = None  # today's code: the record failed, the rows come back after their lease
    assert receiver.releaser is not None
    receiver.releaser.join(5)  # the lock is gone
    clock.advance(seconds=LEASE_S + 1)
    dispatch_outbox(app.services, [receiver.notifier()])
    assert receiver.repeats == 0, f"{receiver.repeats} of 12 notifications were sent twice"
    assert len(receiver.keys) == 12 and report is not None and report.sent == 12
    assert _outbox_statuses(app) == ["sent"] * 12, "each row is marked sent once the lock is gone"


# --- 4. health tells the truth ---------------------------------------------------------------------

@pytest.fixture
def fresh_probe(monkeypatch):
    """No cached write probe between the steps of a test."""
    monkeypatch.setattr("gridflow.service.health.PROBE_MAX_AGE_S", 0.0, raising=False)


def _health(app) -> httpx.Response:
    return TestClient(create_app(app, start_runner=False)).get("/healthz")


def test_health_is_degraded_and_503_while_the_database_refuses_writes(make_app, db_url, fresh_probe):
    app = make_app(db_url, **FAST)
    if app.services.db.dialect == "postgresql":  # a database set read-only refuses every write
        name = sa.engine.make_url(db_url).database
        admin = sa.create_engine(sa.engine.make_url(db_url).set(database="postgres"),
                                 isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

        def read_only(on: str) -> None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {on}')
            app.services.db.dispose()  # new sessions take the setting

        read_only("on")
        try:
            r = _health(app)
        finally:
            read_only("off")
            admin.dispose()
        expected = "writes_refused"
    else:
        with HeldLock(db_url):
            r = _health(app)
        expected = "database_locked"
    assert r.status_code == 503 and r.headers["Retry-After"]
    body = r.json()
    assert body["status"] == "degraded" and body["reasons"] == [expected] and body["database"] == "ok"
    assert body["write_error"]
    after = _health(app)
    assert after.status_code == 200 and after.json()["status"] == "ok" and after.json()["reasons"] == []


def test_health_names_a_timer_runner_that_failed_its_last_polls(make_app, sqlite_url, fresh_probe):
    app = make_app(sqlite_url, health_runner_failures=3, **FAST)
    with HeldLock(sqlite_url):
        for _ in range(3):
            with pytest.raises(StoreUnavailable):
                app.runner.run_due()
    r = _health(app)
    assert r.status_code == 503
    assert r.json()["reasons"] == ["runner_failing"] and r.json()["runner"]["consecutive_failures"] == 3
    metrics = TestClient(create_app(app, start_runner=False)).get("/metrics").text
    assert 'gridflow_health_degraded{reason="runner_failing"} 1.0' in metrics
    assert "gridflow_runner_consecutive_failures 3.0" in metrics
    app.runner.run_due()  # a poll that works
    assert _health(app).json()["status"] == "ok"


def test_health_says_timers_overdue_when_due_timers_wait_beyond_the_threshold(make_app, db_url, clock):
    app = make_app(db_url, health_max_timer_lag=600)
    report(app.services)
    clock.advance(days=30)  # its deadlines (past the National Day week) are long past, nobody fired them
    r = _health(app)
    assert r.status_code == 200, "the API still works: degraded, not down"
    assert r.json()["status"] == "degraded" and r.json()["reasons"] == ["timers_overdue"]
    assert r.json()["timers"]["lag_s"] > 600
    metrics = TestClient(create_app(app, start_runner=False)).get("/metrics").text
    assert 'gridflow_health_degraded{reason="timers_overdue"} 1.0' in metrics
    app.runner.run_due()
    assert _health(app).json()["reasons"] == []
