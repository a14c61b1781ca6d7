"""One harness per timer runner, so the contract cases run unchanged against each.

- ``inline``: fires when told, on SQLite and PostgreSQL;
- ``thread``: polls in the background, on SQLite and PostgreSQL;
- ``celery``: the scheduler in this process hands due timers to a real Celery worker
  process over the real Redis (PostgreSQL only, as in production).

Cases are opened on the test's manual clock, which lies in the past of the real one:
a Celery worker, firing on the real clock, fires late — exactly what a runner coming
back after downtime does.
"""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa

from gridflow.adapters.celery_app import FIRE_TIMERS, TIMER_QUEUE, broker_keyprefix
from gridflow.adapters.timer_index import redis_client
from gridflow.bootstrap import App, bootstrap
from gridflow.processes.celery_runner import CeleryTimerRunner
from gridflow.processes.contract import TimerRunner
from gridflow.processes.runners import InlineTimerRunner, ThreadTimerRunner
from gridflow.service.timers import fire_timers
from gridflow.settings import Settings
from tests.production.support import Deployment, truncate

KINDS = ["inline-sqlite", "inline-postgres", "thread-sqlite", "thread-postgres", "celery-postgres"]
CLAIM_S = 10.0


class Harness:
    """A wired app and its runner(s); ``settle`` returns once everything due has taken effect."""

    def __init__(self, kind: str, app: App, runners: list) -> None:
        self.kind = kind
        self.app = app
        self.svc = app.services
        self.runners = runners

    def _due(self) -> int:
        with self.svc.db.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM timers WHERE due_at <= :now"),
                                {"now": self.svc.clock.now()}).scalar()

    def settle(self, timeout: float = 30.0) -> None:
        if self.kind == "inline":
            for runner in self.runners:
                runner.run_due()
            return
        end = time.monotonic() + timeout
        while self._due():
            assert time.monotonic() < end, f"the {self.kind} runner left due timers unfired"
            time.sleep(0.05)

    def redeliver(self, timer_ids: list[int]) -> None:
        """Offer timers to the firing side again, as a redelivered message would."""
        if self.kind != "celery":
            fire_timers(self.svc, timer_ids)
            return
        self.app.celery.send_task(FIRE_TIMERS, args=[timer_ids], queue=TIMER_QUEUE)
        client = self.runners[0].client
        prefix = broker_keyprefix(self.app.settings)
        end = time.monotonic() + 20
        time.sleep(0.3)
        while client.llen(prefix + TIMER_QUEUE) or client.hlen(prefix + "unacked"):
            assert time.monotonic() < end, "the worker never took the redelivered batch"
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self) -> None:
        for runner in self.runners[1:]:
            runner.stop()
        self.app.close()


@pytest.fixture(scope="module")
def celery_worker(request, tmp_path_factory):
    """One real worker process per module (it starts in seconds; the cases share it)."""
    url = request.getfixturevalue("pg_database_url")
    redis_url = request.getfixturevalue("redis_url")
    prefix = f"{request.getfixturevalue('redis_prefix')}-contract-{uuid.uuid4().hex[:8]}"
    truncate(url)
    dep = Deployment(url, redis_url, prefix, tmp_path_factory.mktemp("celery"))
    dep.extra_env["GRIDFLOW_TIMER_CLAIM_SECONDS"] = str(CLAIM_S)
    worker = dep.start_worker(concurrency=1)
    yield dep
    worker.kill_group()  # no warm shutdown: nothing it holds matters any more
    dep.close()


def _clear_index(dep: Deployment) -> None:
    client = dep.redis()
    for key in client.scan_iter(f"{dep.prefix}:timers:*"):
        client.delete(key)
    client.delete(f"{dep.prefix}:outbox:queued")
    client.close()


def _another(app: App, kind: str, name: str, options: dict):
    """A second runner of the same kind on the same services (two processes' worth, side by side)."""
    svc = app.services
    if kind == "celery":
        return CeleryTimerRunner(svc, app.celery, redis_client(app.settings), name=name, **options)
    runner_class = {"inline": InlineTimerRunner, "thread": ThreadTimerRunner}[kind]
    return runner_class(svc, name=name, **options)


@pytest.fixture(params=KINDS)
def runner_kind(request) -> str:
    return request.param


@pytest.fixture
def open_harness(request, runner_kind, clock, tmp_path, sqlite_template):
    """``open_harness(runners=1)``: a harness with that many runners of the kind side by side, started."""
    kind, database = runner_kind.split("-")
    harnesses: list[Harness] = []

    def make(runners: int = 1) -> Harness:
        if database == "sqlite":
            url = request.getfixturevalue("sqlite_url")
        else:
            url = request.getfixturevalue("pg_database_url")
        extra = {}
        options: dict = {}
        if kind == "celery":
            dep = request.getfixturevalue("celery_worker")
            truncate(url)
            _clear_index(dep)
            extra = {"broker_url": dep.redis_url, "redis_prefix": dep.prefix}
            options = {"poll_interval": 0.05, "sweep_interval": 0.2, "linger": 0.0}
        elif database == "postgres":
            truncate(url)
        if kind == "thread":
            options = {"interval": 0.05}
        settings = Settings(database_url=url, environment="test", seed_demo=True, timer_claim_seconds=CLAIM_S,
                            **extra)
        app = bootstrap(settings, clock, runner=kind, runner_options={**options, "name": f"{kind}-0"})
        harness = Harness(kind, app, [app.runner] + [_another(app, kind, f"{kind}-{i}", options)
                                                      for i in range(1, runners)])
        harnesses.append(harness)
        for runner in harness.runners:
            assert isinstance(runner, TimerRunner) and runner.status.kind == kind
            runner.start()
        return harness

    yield make
    for harness in harnesses:
        harness.stop()


@pytest.fixture
def harness(open_harness) -> Harness:
    return open_harness()
