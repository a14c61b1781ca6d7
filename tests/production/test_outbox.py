"""The outbox: notifications written with each change are delivered at least once, with backoff.

Real SQLite and PostgreSQL; the webhook endpoint is an in-process httpx
transport, so a test decides when the receiver is up or down.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from gridflow.adapters.notifiers import LogNotifier, WebhookNotifier
from gridflow.adapters.orm import OutboxRow
from gridflow.processes.outbox import MAX_ATTEMPTS, backoff, dispatch_outbox
from gridflow.service.intake import ReportCase, report_case

from .support import DEADLINE, DISPATCHER, WORKFLOWS


class Receiver:
    """A webhook endpoint that records what it got, and can be told to fail."""

    def __init__(self) -> None:
        self.received: list[httpx.Request] = []
        self.status = 200
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.received.append(request)
        return httpx.Response(self.status)

    def notifier(self) -> WebhookNotifier:
        return WebhookNotifier("http://receiver.test/hook",
                               client=httpx.Client(transport=httpx.MockTransport(self)))


def _breach(app, clock, n: int = 1) -> None:
    """n cases breach their deadline: 2 notifications each (breached, escalated) land in the outbox."""
    for i in range(n):
        report_case(app.services, ReportCase("fault_drill", DISPATCHER, category="C0101", title=f"c{i}"))
    clock.advance(DEADLINE)
    app.runner.run_due()


def _outbox(app) -> list[tuple]:
    t = OutboxRow.__table__
    with app.services.db.connect() as conn:
        return conn.execute(sa.select(t.c.id, t.c.status, t.c.attempts, t.c.next_attempt_at, t.c.last_error)
                            .order_by(t.c.id)).all()


@pytest.fixture
def app(make_app, db_url):
    return make_app(db_url, workflows_dir=WORKFLOWS)


def test_notifications_are_posted_once_with_an_idempotency_key(app, clock):
    _breach(app, clock)
    receiver = Receiver()
    report = dispatch_outbox(app.services, [LogNotifier(), receiver.notifier()])
    assert report.sent == 2
    assert ({r.headers["Idempotency-Key"] for r in receiver.received}
            == {f"gridflow-outbox-{row[0]}" for row in _outbox(app)})
    kinds = sorted(r.read().decode() for r in receiver.received)
    assert '"kind":"breached"' in kinds[0] and '"case":"GF-2026-000001"' in kinds[0]
    assert [row[1] for row in _outbox(app)] == ["sent", "sent"]
    assert dispatch_outbox(app.services, [receiver.notifier()]).handled == 0, "nothing is sent twice"


def test_a_failing_webhook_is_retried_with_exponential_backoff_then_given_up(app, clock):
    _breach(app, clock)
    receiver = Receiver()
    receiver.status = 503
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = dispatch_outbox(app.services, [receiver.notifier()])
        assert report.handled == 2, f"attempt {attempt}"
        rows = _outbox(app)
        assert {row[2] for row in rows} == {attempt}
        if attempt < MAX_ATTEMPTS:
            assert report.retried == 2 and {row[1] for row in rows} == {"pending"}
            assert "503" in rows[0][4]
            wait = max(row[3] for row in rows) - clock.now()
            waits.append(wait.total_seconds())
            assert dispatch_outbox(app.services, [receiver.notifier()]).handled == 0, "not before its time"
            clock.advance(wait + timedelta(seconds=1))
    assert report.dead == 2 and {row[1] for row in _outbox(app)} == {"dead"}
    assert all(later > earlier for earlier, later in zip(waits, waits[1:]))  # it backs off


def test_a_webhook_that_comes_back_gets_the_notifications(app, clock):
    _breach(app, clock)
    receiver = Receiver()
    receiver.status = 500
    dispatch_outbox(app.services, [receiver.notifier()])
    receiver.status = 204
    clock.advance(minutes=5)
    assert dispatch_outbox(app.services, [receiver.notifier()]).sent == 2
    assert [(row[1], row[2], row[4]) for row in _outbox(app)] == [("sent", 2, None), ("sent", 2, None)]


def test_rows_left_when_the_time_is_up_are_handed_back_untried(app, clock):
    _breach(app, clock, n=2)
    report = dispatch_outbox(app.services, [LogNotifier()], deadline=0.0)
    assert report.handled == 0
    assert [(row[1], row[2]) for row in _outbox(app)] == [("pending", 0)] * 4
    assert dispatch_outbox(app.services, [LogNotifier()]).sent == 4


def test_backoff_doubles_with_jitter_and_a_cap():
    assert backoff(1, rand=lambda: 1.0) == 2.0
    assert backoff(4, rand=lambda: 1.0) == 16.0
    assert backoff(4, rand=lambda: 0.0) == 8.0
    assert backoff(40, rand=lambda: 1.0) == 3600.0


@pytest.mark.postgres
def test_dispatchers_side_by_side_deliver_each_notification_once(make_app, pg_database_url, clock):
    from .support import truncate

    truncate(pg_database_url)
    app = make_app(pg_database_url, workflows_dir=WORKFLOWS)
    _breach(app, clock, n=30)
    receiver = Receiver()
    threads = [threading.Thread(target=lambda: [dispatch_outbox(app.services, [receiver.notifier()], limit=5)
                                                for _ in range(10)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [r.headers["Idempotency-Key"] for r in receiver.received]
    assert len(keys) == 60 and len(set(keys)) == 60
