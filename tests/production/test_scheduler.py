"""The scheduler's index and hand-over, one cycle at a time, on the real PostgreSQL and Redis.

A manual clock drives due times and reservations; Celery is replaced by a
recorder at the ``send_task`` boundary (the fault tests run the real one).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa

from gridflow.adapters.timer_index import TimerIndex, index_key, marker_key
from gridflow.processes.celery_runner import Scheduler
from gridflow.service.actions import TakeAction, take_action
from gridflow.service.intake import ReportCase, report_case

from .support import DEADLINE, DISPATCHER, WORKFLOWS, truncate

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class RecordingCelery:
    """Stands in for the Celery app at the one call the scheduler makes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    def send_task(self, name, args=None, **options):
        self.sent.append((name, {"args": args, **options}))

    def timer_ids(self) -> list[int]:
        return [i for name, call in self.sent if name == "gridflow.fire_timers" for i in call["args"][0]]


@pytest.fixture
def world(pg_database_url, redis_url, redis_prefix, clock, make_app):
    truncate(pg_database_url)
    prefix = f"{redis_prefix}-{uuid.uuid4().hex[:8]}"
    app = make_app(pg_database_url, workflows_dir=WORKFLOWS, redis_prefix=prefix, broker_url=redis_url,
                   timer_claim_seconds=30)
    client = redis.Redis.from_url(redis_url)
    yield app, client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def _scheduler(app, client, celery=None, **options) -> Scheduler:
    options.setdefault("sweep_interval", 0.0)
    options.setdefault("poll_interval", 0.0)  # every step looks at everything
    return Scheduler(app.settings, app.services, client, celery or RecordingCelery(), **options)


def _started(app, client, cases: int, **options) -> tuple[Scheduler, RecordingCelery]:
    """Open ``cases`` cases, then start a scheduler (its Celery recorded) over them."""
    _open(app, cases)
    celery = RecordingCelery()
    s = _scheduler(app, client, celery, **options)
    s.start()
    return s, celery


def _open(app, n: int) -> list[str]:
    return [report_case(app.services, ReportCase("fault_drill", DISPATCHER, category="C0101",
                                                 title=f"c{i}")).number
            for i in range(n)]


def _timer_ids(app) -> list[int]:
    with app.services.db.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT id FROM timers ORDER BY id"))]


def test_index_is_built_from_the_database_at_start_with_a_marker(world):
    app, client = world
    s, _ = _started(app, client, 12)
    s.step()
    index = TimerIndex(client, app.settings)
    assert sorted(int(m) for m in client.zrange(index_key(app.settings), 0, -1)) == _timer_ids(app)
    assert index.marker()["redis_run_id"] == index.run_id()
    due = client.zscore(index_key(app.settings), str(_timer_ids(app)[0]))
    assert due == pytest.approx((app.services.clock.now() + DEADLINE).timestamp())


def test_index_lost_to_a_flush_is_rebuilt_and_reservations_released(world, clock):
    app, client = world
    s, celery = _started(app, client, 5)
    clock.advance(DEADLINE + timedelta(seconds=1))
    s.step()
    assert sorted(celery.timer_ids()) == _timer_ids(app)  # reserved and queued
    client.delete(index_key(app.settings), marker_key(app.settings))  # Redis lost everything, queue included
    s.step()
    s.step()
    assert sorted(celery.timer_ids()) == sorted(_timer_ids(app) * 2), \
        "queued again: the first tasks may be gone"
    assert client.exists(marker_key(app.settings))


def test_redis_restart_is_recognised_by_its_run_id(world):
    app, client = world
    s, _ = _started(app, client, 3)
    s.step()
    client.set(marker_key(app.settings), '{"redis_run_id": "a Redis that is gone"}')
    client.delete(index_key(app.settings))
    s.step()
    s.step()
    assert client.zcard(index_key(app.settings)) == 3


def test_due_timers_are_reserved_and_queued_in_batches_never_with_an_eta(world, clock):
    app, client = world
    s, celery = _started(app, client, 23, task_size=10)
    s.step()
    assert celery.sent == [], "nothing is due yet"
    clock.advance(DEADLINE)
    s.step()
    sizes = [len(call["args"][0]) for _, call in celery.sent]
    assert sizes == [10, 10, 3]
    assert all(set(call) == {"args", "queue"} for _, call in celery.sent), "no eta, no countdown"
    with app.services.db.connect() as conn:
        rows = conn.execute(sa.text("SELECT DISTINCT status, claimed_by FROM timers")).all()
    assert rows == [("claimed", s.name)]
    assert client.zcard(index_key(app.settings)) == 0


def test_two_schedulers_never_queue_the_same_timer(world, clock):
    app, client = world
    _open(app, 40)
    a, b = RecordingCelery(), RecordingCelery()
    sa_, sb = _scheduler(app, client, a, name="a"), _scheduler(app, client, b, name="b")
    sa_.start()
    sb.start()
    clock.advance(DEADLINE + timedelta(seconds=1))
    for _ in range(3):
        sa_.step()
        sb.step()
    assert sorted(a.timer_ids() + b.timer_ids()) == _timer_ids(app)


def test_a_reservation_that_runs_out_is_queued_again(world, clock):
    """A worker died with the batch: the database reservation ends and the sweep offers the timers again."""
    app, client = world
    s, celery = _started(app, client, 4)
    clock.advance(DEADLINE)
    s.step()
    s.step()
    assert len(celery.timer_ids()) == 4
    clock.advance(seconds=app.settings.timer_claim_seconds + 1)
    s.step()
    assert len(celery.timer_ids()) == 8


def test_timers_created_later_are_found_even_when_an_earlier_id_commits_last(world, clock):
    app, client = world
    s = _scheduler(app, client)
    s.start()
    s.step()
    slow = app.services.db.write_engine.connect()  # a transaction that took an id and commits late
    tx = slow.begin()
    case_id = report_case(app.services, ReportCase("fault_drill", DISPATCHER, category="C0101")).number
    late_id = slow.execute(sa.text(
        "INSERT INTO timers (case_id, key, deadline_id, kind, due_at, status, set_at_version) "
        "SELECT id, 'extra', 'extra', 'breach', now(), 'pending', 1 FROM cases WHERE number = :n "
        "RETURNING id"),
        {"n": case_id}).scalar()
    _open(app, 1)  # a later id, committed first
    s.step()
    members = {int(m) for m in client.zrange(index_key(app.settings), 0, -1)}
    assert late_id not in members and max(_timer_ids(app)) in members
    tx.commit()
    slow.close()
    s.step()
    assert late_id in {int(m) for m in client.zrange(index_key(app.settings), 0, -1)}


def test_cancelled_timers_are_pruned_from_the_index(world):
    app, client = world
    numbers = _open(app, 6)
    s = _scheduler(app, client)
    s.start()
    s.step()
    for n in numbers[:4]:
        take_action(app.services, TakeAction(n, "close", DISPATCHER))
    s._prune()
    assert client.zcard(index_key(app.settings)) == 2


def test_nothing_is_queued_while_the_workers_are_behind(world, clock):
    app, client = world
    s, celery = _started(app, client, 5, max_queued_tasks=2)
    clock.advance(DEADLINE)
    client.rpush(s._queue_key, "a", "b")  # two tasks already waiting in the broker queue
    s.step()
    assert celery.sent == []
    client.delete(s._queue_key)
    s.step()
    assert sorted(celery.timer_ids()) == _timer_ids(app)
