"""Durable timers at city scale: the Redis index, the scheduler + Celery workers, and the naive ETA way.

Three measurements on one scratch PostgreSQL database and one Redis key prefix
(both removed at the end):

1. **Pending** — ``--pending`` timers (default 1,000,000) far in the future, as
   rows in PostgreSQL and members of the scheduler's sorted set, built by the
   scheduler's own rebuild. Reports Redis bytes per million and the table size.
2. **Firing** — ``--due`` timers (default 100,000) fall due at one instant while
   the pending ones stay indexed; ``gridflow scheduler`` and ``--workers``
   ``gridflow worker`` processes (``--concurrency`` pool processes each) fire
   them through the service: escalations per second. Then ``--steady`` more
   fall due at ``--steady-load`` × that rate: lateness p50/p99 (due → fired)
   while the due rate stays under the firing rate.
3. **Naive** — ``--naive`` deadlines as Celery ETA tasks (``apply_async(eta=…)``),
   one per timer, fired by the same service call in one worker with the same
   number of pool processes: the worker's memory while it holds them, and the
   firing rate once they are due.

Cases for (2) and (3) are copies, made in SQL, of one case opened through the
service, so every firing is a real one (lock, engine, events, escalation,
outbox); only their creation is cut short.

    python bench/timers.py                         # the full run (several minutes on 2 cores)
    python bench/timers.py --pending 100000 --due 10000 --steady 3000 --naive 10000   # a quick one

Environment: GRIDFLOW_BENCH_POSTGRES_URL (an admin connection; default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres), GRIDFLOW_BENCH_REDIS_URL
(default redis://127.0.0.1:6379/0).

Last line: RESULT fired_per_s=… lateness_p99_s=… redis_mb_per_million=… naive_worker_mb=…
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from gridflow.adapters.orm import CaseRow  # noqa: E402
from gridflow.engine.case import Actor  # noqa: E402
from gridflow.engine.clock import ManualClock  # noqa: E402

UTC = timezone.utc
DISPATCHER = Actor("cd-1", "community_dispatcher", "370602001001")
DEADLINE = timedelta(minutes=10)
NAIVE_TASK = "bench.naive_fire_timer"
NAIVE_QUEUE = "bench.naive"
WORKFLOW = """
name: bench_drill
version: 1
label: {zh: 压测, en: Bench drill}
calendar: 24x7
roles: [community_dispatcher, supervisor]
escalation: {ladder: [community, street, district, city]}
stages: {open: {zh: 处理中, en: Open}, closed: {zh: 已办结, en: Closed}}
initial: waiting
states:
  waiting:
    label: {zh: 待响应, en: Awaiting response}
    stage: open
    holder: community_dispatcher
    timers:
      - name: respond
        label: {zh: 响应时限, en: Response deadline}
        duration: 10m
        on_breach: {escalate: true, notify: [supervisor]}
  closed: {label: {zh: 已办结, en: Closed}, stage: closed, final: true, outcome: resolved}
actions:
  close: {label: {zh: 办结, en: Close}, from: [waiting], to: closed, roles: [community_dispatcher]}
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total / 1024


def _tree(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (children included, if alive)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in {p for root in pids for p in _tree(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / tick


def named(name: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == name:
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        tag = uuid.uuid4().hex[:8]
        admin_url = os.environ.get("GRIDFLOW_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.dbname = f"gridflow_bench_{tag}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.dbname}"')
        self.url = sa.engine.make_url(admin_url).set(database=self.dbname).render_as_string(
            hide_password=False)
        self.redis_url = os.environ.get("GRIDFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        self.prefix = f"gridflow-bench-{tag}"
        self.redis = redis.Redis.from_url(self.redis_url)
        self.tmp = Path(tempfile.mkdtemp(prefix="gridflow-bench-"))
        (self.tmp / "workflows").mkdir()
        (self.tmp / "workflows" / "bench_drill.yaml").write_text(WORKFLOW)
        self.procs: list[subprocess.Popen] = []
        from gridflow.adapters.db import Database

        db = Database(self.url)
        db.upgrade()
        db.dispose()
        self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)

    # -- environment, processes --

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
        env.update(GRIDFLOW_ENVIRONMENT="production", GRIDFLOW_DATABASE_URL=self.url,
                   GRIDFLOW_BROKER_URL=self.redis_url, GRIDFLOW_REDIS_PREFIX=self.prefix,
                   GRIDFLOW_WORKFLOWS_DIR=str(self.tmp / "workflows"), GRIDFLOW_SEED_DEMO="false",
                   GRIDFLOW_LOG_JSON="true", GRIDFLOW_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
        return env

    def settings(self, **kw):
        from gridflow.settings import Settings

        return Settings(database_url=self.url, broker_url=self.redis_url, redis_prefix=self.prefix,
                        workflows_dir=self.tmp / "workflows", **kw)

    def spawn(self, name: str, *argv: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, *argv], env=self.env(), stdout=subprocess.DEVNULL,
                                stderr=(self.tmp / f"{name}.log").open("w"), start_new_session=True,
                                cwd=str(Path(__file__).resolve().parent.parent))
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)
        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        self.admin.dispose()
        for key in self.redis.scan_iter(f"{self.prefix}*"):
            self.redis.delete(key)
        self.redis.close()

    def sql(self, statement: str, **params):
        with self.engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.all() if result.returns_rows else []

    # -- cases --

    def template_case(self) -> tuple[int, dict]:
        """One case opened through the service; returns its id and its timer row."""
        from gridflow.bootstrap import bootstrap
        from gridflow.service.intake import ReportCase, report_case

        app = bootstrap(self.settings(seed_demo=True), ManualClock(datetime.now(UTC) - DEADLINE),
                        runner="none")
        number = report_case(app.services, ReportCase("bench_drill", DISPATCHER, title="template")).number
        app.close()
        case_id = self.sql("SELECT id FROM cases WHERE number = :n", n=number)[0][0]
        timer = self.sql("SELECT key, deadline_id, kind, set_at_version FROM timers WHERE case_id = :c",
                         c=case_id)[0]
        self.sql("DELETE FROM timers WHERE case_id = :c", c=case_id)
        return case_id, dict(timer._mapping)

    def clone_cases(self, template: int, tag: str, n: int) -> tuple[int, int]:
        """n copies of the template case (numbers GF-<tag>-…); returns their id range."""
        cols = [c.name for c in CaseRow.__table__.columns if c.name not in ("id", "number")]
        col_list = ", ".join(cols)
        rows = self.sql(
            f"INSERT INTO cases (number, {col_list}) SELECT 'GF-{tag}-' || lpad(g::text, 7, '0'), {col_list} "
            "FROM cases, generate_series(1, :n) g WHERE id = :t RETURNING id", n=n, t=template)
        ids = [r[0] for r in rows]
        return min(ids), max(ids)

    def add_timers(self, lo: int, hi: int, timer: dict, first_due: datetime, step_s: float) -> None:
        self.sql("INSERT INTO timers (case_id, key, deadline_id, kind, due_at, status, set_at_version) "
                 "SELECT id, :key, :deadline_id, :kind, :first + (id - :lo) * :step * interval '1 second', "
                 "'pending', :set_at_version FROM cases WHERE id BETWEEN :lo AND :hi",
                 lo=lo, hi=hi, first=first_due, step=step_s, **timer)

    # -- 1: a million pending --

    def pending(self, template: int) -> dict:
        n = self.args.pending
        per_case = 100
        t0 = time.monotonic()
        lo, hi = self.clone_cases(template, "PEND", max(1, n // per_case))
        self.sql("INSERT INTO timers (case_id, key, deadline_id, kind, due_at, status, set_at_version) "
                 "SELECT c.id, 'bench/' || k, 'bench', 'breach', "
                 "now() + interval '1 day' + (c.id * 100 + k) % 2592000 * interval '1 second', 'pending', 1 "
                 "FROM cases c CROSS JOIN generate_series(1, :k) k WHERE c.id BETWEEN :lo AND :hi",
                 k=per_case, lo=lo, hi=hi)
        rows = self.sql("SELECT count(*), pg_total_relation_size('timers') FROM timers")[0]
        log(f"{rows[0]:,} pending timer rows written in {time.monotonic() - t0:.1f}s; "
            f"timers table {rows[1] / 2**20:.0f} MiB")
        from gridflow.adapters.timer_index import index_key
        from gridflow.processes.celery_runner import Scheduler
        from gridflow.bootstrap import bootstrap

        app = bootstrap(self.settings(), runner="none", seed=False)
        client = redis.Redis.from_url(self.redis_url)
        before = client.info("memory")["used_memory"]
        scheduler = Scheduler(app.settings, app.services, client, celery=None)
        t0 = time.monotonic()
        scheduler._hw = scheduler.table.max_id()
        scheduler._index_lost()
        while scheduler._rebuild is not None:
            scheduler._rebuild_step()
        took = time.monotonic() - t0
        key_bytes = client.memory_usage(index_key(app.settings), samples=0)
        grew = client.info("memory")["used_memory"] - before
        members = client.zcard(index_key(app.settings))
        app.close()
        client.close()
        per_million = key_bytes / members * 1_000_000 / 2**20
        log(f"index of {members:,} timers built by the scheduler in {took:.1f}s: "
            f"sorted set {key_bytes / 2**20:.1f} MiB "
            f"(used_memory +{grew / 2**20:.1f} MiB) = {per_million:.1f} MiB per million")
        return {"rows": rows[0], "table_mb": rows[1] / 2**20, "redis_mb_per_million": per_million,
                "rebuild_s": took, "members": members}

    # -- 2: firing through the scheduler and workers --

    def wait_fired(self, expected: int, since_id: int, timeout: float, sample=None) -> float:
        end = time.monotonic() + timeout
        done = 0
        while time.monotonic() < end:
            done = self.sql("SELECT count(*) FROM case_events "
                            "WHERE type = 'DeadlineBreached' AND case_id >= :c",
                            c=since_id)[0][0]
            if sample:
                sample()
            if done >= expected:
                return time.monotonic()
            time.sleep(0.5)
        raise SystemExit(f"only {done} of {expected} timers fired within {timeout}s; logs in {self.tmp}")

    def fired_stats(self, lo: int, hi: int) -> dict:
        row = self.sql(
            "SELECT count(*) FILTER (WHERE type = 'DeadlineBreached'), "
            "count(*) FILTER (WHERE type = 'CaseEscalated'), "
            "min(at) FILTER (WHERE type = 'DeadlineBreached'), "
            "max(at) FILTER (WHERE type = 'DeadlineBreached') "
            "FROM case_events WHERE case_id BETWEEN :lo AND :hi", lo=lo, hi=hi)[0]
        first_due = self.sql("SELECT min((data->>'due_at')::timestamptz) FROM case_events "
                             "WHERE type = 'DeadlineBreached' AND case_id BETWEEN :lo AND :hi",
                             lo=lo, hi=hi)[0][0]
        lateness = [float(r[0]) for r in self.sql(
            "SELECT (data->>'lateness_s')::float FROM case_events WHERE type = 'DeadlineBreached' "
            "AND case_id BETWEEN :lo AND :hi", lo=lo, hi=hi)]
        span = (row[3] - first_due).total_seconds()
        return {"breached": row[0], "escalated": row[1], "span_s": span, "per_s": row[0] / span,
                "escalations_per_s": row[1] / span, "p50": pct(lateness, 0.5), "p99": pct(lateness, 0.99),
                "max": max(lateness)}

    def firing(self, template: int, timer: dict) -> dict:
        a = self.args
        lo, hi = self.clone_cases(template, "DUE", a.due)
        slo, shi = self.clone_cases(template, "STEADY", a.steady) if a.steady else (0, -1)
        log(f"{a.due:,} + {a.steady:,} cases copied; starting 1 scheduler and {a.workers} workers "
            f"× {a.concurrency} pool processes")
        sched = self.spawn("scheduler", "-c", "from gridflow.processes.scheduler import run_scheduler; "
                           "from gridflow.bootstrap import Wiring; from gridflow.settings import Settings; "
                           "run_scheduler(Wiring(Settings()))")
        workers = [self.spawn(f"worker-{i}", "-c",
                              "import sys; from gridflow.processes.worker import run_worker; "
                              "from gridflow.bootstrap import Wiring; "
                              "from gridflow.settings import Settings; "
                              "run_worker(Wiring(Settings()), concurrency=int(sys.argv[1]))",
                              str(a.concurrency)) for i in range(a.workers)]
        time.sleep(8)  # the scheduler refreshes its index of the pending timers; the workers start
        due = datetime.now(UTC) + timedelta(seconds=5)
        self.add_timers(lo, hi, timer, due, 0.0)
        peak = [0.0]

        def sample():
            peak[0] = max(peak[0], sum(rss_mb(w.pid) for w in workers))

        groups = {"scheduler": [sched.pid], "workers": [w.pid for w in workers],
                  "postgres": named("postgres"), "redis": named("redis-server")}
        cpu0 = {k: cpu_s(v) for k, v in groups.items()}
        wall0 = time.monotonic()
        self.wait_fired(a.due, lo, timeout=max(600, a.due / 50), sample=sample)
        wall = time.monotonic() - wall0
        cpu = {k: (cpu_s(v) - cpu0[k]) / wall for k, v in groups.items()}
        burst = self.fired_stats(lo, hi)
        burst["cpu"] = cpu
        log(f"burst: {burst['breached']:,} timers due at once fired in {burst['span_s']:.1f}s = "
            f"{burst['per_s']:.0f}/s ({burst['escalations_per_s']:.0f} escalations/s); lateness p50 "
            f"{burst['p50']:.2f}s p99 {burst['p99']:.2f}s (queueing); worker RSS peak {peak[0]:.0f} MiB")
        log("burst: cores busy — " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
            + f"; machine load {os.getloadavg()[0]:.1f}")
        steady = None
        if a.steady:
            rate = a.steady_load * burst["per_s"]
            due = datetime.now(UTC) + timedelta(seconds=5)
            self.add_timers(slo, shi, timer, due, 1.0 / rate)
            log(f"steady: {a.steady:,} timers falling due at {rate:.0f}/s over {a.steady / rate:.0f}s")
            self.wait_fired(a.steady, slo, timeout=a.steady / rate + 300, sample=sample)
            steady = self.fired_stats(slo, shi)
            steady["rate"] = rate
            log(f"steady: lateness p50 {steady['p50']:.3f}s p99 {steady['p99']:.3f}s "
                f"max {steady['max']:.2f}s")
        for proc in [sched, *workers]:
            self.stop(proc)
        return {"burst": burst, "steady": steady, "worker_mb": peak[0]}

    # -- 3: the naive way --

    def naive(self, template: int, timer: dict) -> dict:
        n = self.args.naive
        lo, hi = self.clone_cases(template, "NAIVE", n)
        lead = max(60.0, n / 1000)  # every message must be in the worker before the first is due
        due = datetime.now(UTC) + timedelta(seconds=lead)
        self.add_timers(lo, hi, timer, due, 0.0)
        ids = [r[0] for r in self.sql("SELECT id FROM timers WHERE case_id BETWEEN :lo AND :hi ORDER BY id",
                                      lo=lo, hi=hi)]
        worker = self.spawn("naive-worker", str(Path(__file__).resolve()), "--naive-worker",
                            str(self.args.workers * self.args.concurrency))
        app = naive_app(self.settings())
        t0 = time.monotonic()
        with app.producer_or_acquire() as producer:
            for timer_id in ids:
                app.send_task(NAIVE_TASK, args=[timer_id], eta=due, queue=NAIVE_QUEUE, producer=producer)
        log(f"naive: {n:,} ETA tasks sent in {time.monotonic() - t0:.1f}s, all due at +{lead:.0f}s")
        peak = [0.0]
        queue_key = f"{self.prefix}:broker:{NAIVE_QUEUE}"
        while datetime.now(UTC) < due - timedelta(seconds=1):
            peak[0] = max(peak[0], rss_mb(worker.pid))
            time.sleep(1)
        held = peak[0]
        waiting = self.redis.llen(queue_key)
        log(f"naive: worker holds {n - waiting:,} ETA tasks before they are due: RSS {held:.0f} MiB")

        def sample():
            peak[0] = max(peak[0], rss_mb(worker.pid))

        self.wait_fired(n, lo, timeout=max(600, n / 20), sample=sample)
        stats = self.fired_stats(lo, hi)
        self.stop(worker)
        log(f"naive: fired {stats['breached']:,} in {stats['span_s']:.1f}s = {stats['per_s']:.0f}/s; "
            f"lateness p99 {stats['p99']:.2f}s; worker RSS peak {peak[0]:.0f} MiB")
        return {"worker_mb": peak[0], "held_mb": held, "not_yet_taken": waiting, **stats}


def naive_app(settings):
    """The same Celery settings, plus one task that fires one timer — scheduled with an ETA."""
    from gridflow.adapters.celery_app import make_celery
    from gridflow.bootstrap import Wiring
    from gridflow.service.timers import fire_timers

    wired = {}

    app = make_celery(settings)
    app.conf.task_routes = {NAIVE_TASK: {"queue": NAIVE_QUEUE}}

    @app.task(name=NAIVE_TASK, acks_late=True)
    def naive_fire_timer(timer_id: int) -> str:
        if "app" not in wired:  # one per pool process, after the fork
            wired["app"] = Wiring(settings)(runner="none")
        return fire_timers(wired["app"].services, [timer_id])[0].status

    return app


def run_naive_worker(concurrency: int) -> None:
    from kombu import Queue

    from gridflow.settings import Settings

    app = naive_app(Settings())
    app.conf.task_queues = [Queue(NAIVE_QUEUE)]
    app.Worker(concurrency=concurrency, pool="prefork", queues=[NAIVE_QUEUE], loglevel="WARNING", quiet=True,
               without_gossip=True, without_mingle=True, without_heartbeat=True).start()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pending", type=int, default=1_000_000)
    p.add_argument("--due", type=int, default=100_000)
    p.add_argument("--steady", type=int, default=30_000, help="timers for the lateness run (0: skip)")
    p.add_argument("--steady-load", type=float, default=0.6,
                   help="due rate as a fraction of the measured firing rate")
    p.add_argument("--naive", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=2,
                   help="pool processes per worker (gridflow worker's default)")
    p.add_argument("--naive-worker", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.naive_worker:
        return run_naive_worker(args.naive_worker)
    bench = Bench(args)
    try:
        template, timer = bench.template_case()
        pending = bench.pending(template)
        firing = bench.firing(template, timer)
        naive = bench.naive(template, timer) if args.naive else None
    finally:
        bench.close()
    burst, steady = firing["burst"], firing["steady"] or firing["burst"]
    print(f"pending: {pending['rows']:,} rows, timers table {pending['table_mb']:.0f} MiB; "
          f"index {pending['redis_mb_per_million']:.1f} MiB per million, "
          f"rebuilt in {pending['rebuild_s']:.1f}s")
    print(f"firing ({args.workers} workers × {args.concurrency}): {burst['breached']:,} due at once in "
          f"{burst['span_s']:.1f}s = {burst['per_s']:.0f} escalations/s; "
          f"steady at {steady.get('rate', 0):.0f}/s: "
          f"lateness p50 {steady['p50']:.3f}s p99 {steady['p99']:.3f}s; "
          f"workers' RSS {firing['worker_mb']:.0f} MiB")
    if naive:
        print(f"naive ETA ({args.workers * args.concurrency} pool processes): {naive['per_s']:.0f}/s, "
              f"worker RSS {naive['held_mb']:.0f} MiB holding {args.naive - naive['not_yet_taken']:,} tasks "
              f"(peak {naive['worker_mb']:.0f} MiB)")
    print(f"RESULT fired_per_s={burst['per_s']:.0f} lateness_p99_s={steady['p99']:.3f} "
          f"redis_mb_per_million={pending['redis_mb_per_million']:.1f} "
          f"naive_worker_mb={naive['held_mb'] if naive else float('nan'):.0f}")


if __name__ == "__main__":
    main()
