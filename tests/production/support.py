"""Helpers for production-mode tests: real PostgreSQL, real Redis, real scheduler and worker processes.

Each test gets the run's PostgreSQL database emptied, and a Redis key prefix of
its own (the index, the marker and — through ``global_keyprefix`` — every Celery
broker key), so tests and test runs sharing one Redis never see each other.

Cases are opened in the test process through the service on a manual clock set
back in time, so their deadlines fall due a few seconds from *now* on the real
clock the processes use: nothing waits for a ten-minute deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import redis
import sqlalchemy as sa

from gridflow.engine.case import Actor
from gridflow.engine.clock import ManualClock

WORKFLOWS = Path(__file__).parent / "workflows"
#: fault_drill's only deadline.
DEADLINE = timedelta(minutes=10)
DISPATCHER = Actor("cd-1", "community_dispatcher", "370602001001")
WORKER_CODE = ("import sys; from gridflow.processes.worker import run_worker; "
               "from gridflow.bootstrap import Wiring; from gridflow.settings import Settings; "
               "sys.exit(run_worker(Wiring(Settings()), concurrency=int(sys.argv[1])))")
SCHEDULER_CODE = ("import json, sys; from gridflow.processes.scheduler import run_scheduler; "
                  "from gridflow.bootstrap import Wiring; from gridflow.settings import Settings; "
                  "run_scheduler(Wiring(Settings()), **json.loads(sys.argv[1]))")


def truncate(url: str) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        tables = [r[0] for r in conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'")]
        conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
    eng.dispose()


@dataclass
class Proc:
    """A child process in its own process group, its stderr in a file."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    killed: bool = False  # killed on purpose: its exit is expected

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[int]:
        try:
            return [int(p) for p in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()]
        except OSError:
            return []

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        self.killed = True
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self.kill_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group(signal.SIGKILL)  # and any pool process left behind
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []

    def json_logs(self) -> list[dict]:
        out = []
        for line in self.log_lines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


@dataclass
class Deployment:
    """One production-mode deployment: a database, a Redis prefix, and the processes started on them."""

    url: str
    redis_url: str
    prefix: str
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    _apps: list = field(default_factory=list)

    # -- environment --

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
        env.update(
            GRIDFLOW_ENVIRONMENT="production", GRIDFLOW_DATABASE_URL=self.url,
            GRIDFLOW_BROKER_URL=self.redis_url, GRIDFLOW_REDIS_PREFIX=self.prefix,
            GRIDFLOW_WORKFLOWS_DIR=str(WORKFLOWS), GRIDFLOW_SEED_DEMO="false",
            GRIDFLOW_TIMER_CLAIM_SECONDS="4", GRIDFLOW_TIMER_POLL_INTERVAL="0.2", GRIDFLOW_LOG_JSON="true",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def settings(self):
        from gridflow.settings import Settings

        env = self.env()
        return Settings(database_url=self.url, broker_url=env["GRIDFLOW_BROKER_URL"],
                        redis_prefix=self.prefix, workflows_dir=WORKFLOWS, seed_demo=True,
                        timer_claim_seconds=float(env["GRIDFLOW_TIMER_CLAIM_SECONDS"]),
                        timer_poll_interval=float(env["GRIDFLOW_TIMER_POLL_INTERVAL"]))

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.env()["GRIDFLOW_BROKER_URL"])

    # -- processes --

    def _spawn(self, name: str, args: list[str]) -> Proc:
        path = self.tmp / f"{name}.log"
        popen = subprocess.Popen([sys.executable, "-c", *args], env=self.env(), stdout=subprocess.DEVNULL,
                                 stderr=path.open("w"), start_new_session=True)
        proc = Proc(name, popen, path)
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> Proc:
        return self._spawn(name, [WORKER_CODE, str(concurrency)])

    def start_scheduler(self, name: str = "scheduler", **options) -> Proc:
        return self._spawn(name, [SCHEDULER_CODE, json.dumps(options)])

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()

    # -- cases and timers --

    def open_cases(self, n: int, due_in: float, spread: float = 0.0) -> list[str]:
        """Open ``n`` fault_drill cases whose deadlines fall due ``due_in`` … ``due_in + spread`` s \
from now."""
        from gridflow.bootstrap import bootstrap
        from gridflow.service.intake import ReportCase, report_case

        first_due = datetime.now(timezone.utc) + timedelta(seconds=due_in)
        clock = ManualClock(first_due - DEADLINE)
        app = bootstrap(self.settings(), clock, runner="none")
        self._apps.append(app)
        numbers = []
        for i in range(n):
            numbers.append(report_case(app.services,
                                       ReportCase("fault_drill", DISPATCHER, category="C0101",
                                                  title=f"drill {i}")).number)
            if n > 1:
                clock.advance(seconds=spread / (n - 1))
        return numbers

    def sql(self, statement: str, **params):
        eng = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with eng.begin() as conn:
                return conn.execute(sa.text(statement), params).all()
        finally:
            eng.dispose()

    def breaches(self) -> int:
        return self.sql("SELECT count(*) FROM case_events WHERE type = 'DeadlineBreached'")[0][0]

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str,
                 interval: float = 0.1) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            for proc in self.procs:
                if not proc.killed and not proc.alive():
                    raise AssertionError(f"{proc.name} exited: {proc.log_lines()[-20:]}")
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; breaches={self.breaches()}\n"
                             + "\n".join(f"--- {p.name}\n" + "\n".join(p.log_lines()[-15:])
                                         for p in self.procs))

    def assert_each_timer_took_effect_once(self, numbers: list[str]) -> None:
        """The end of every fault test: one breach and one escalation per due timer, nothing left pending."""
        rows = self.sql("""
            SELECT c.number,
                   count(*) FILTER (WHERE e.type = 'DeadlineBreached') AS breached,
                   count(*) FILTER (WHERE e.type = 'CaseEscalated') AS escalated
            FROM cases c LEFT JOIN case_events e ON e.case_id = c.id
            GROUP BY c.number""")
        per_case = {r.number: (r.breached, r.escalated) for r in rows}
        assert set(per_case) == set(numbers)
        wrong = {n: v for n, v in per_case.items() if v != (1, 1)}
        assert not wrong, ("cases whose timer did not take effect exactly once (breaches, escalations): "
                           f"{wrong}")
        total = self.sql("SELECT count(*) FROM case_events "
                         "WHERE type IN ('DeadlineBreached', 'CaseEscalated')")
        assert total[0][0] == 2 * len(numbers)
        # Nothing left to fire but each case's reminder (催办), due a working day after its breach.
        pending = {r[0]: r[1] for r in self.sql("SELECT kind, count(*) FROM timers GROUP BY kind")}
        assert pending == {"reminder": len(numbers)}, pending

    def lateness(self) -> list[float]:
        return [float(r[0]) for r in self.sql(
            "SELECT (data->>'lateness_s')::float FROM case_events WHERE type = 'DeadlineBreached'")]

    def close(self) -> None:
        self.stop_all()
        for app in self._apps:
            app.close()
        client = redis.Redis.from_url(self.redis_url)  # the shared server (a test may have used its own)
        for key in client.scan_iter(f"{self.prefix}*"):
            client.delete(key)
        client.close()
