"""Each due timer takes effect exactly once while processes, Redis and the database fail around it.

Real processes (``run_scheduler``, ``run_worker``), the real PostgreSQL and Redis
servers. Every test ends the same way: one DeadlineBreached and one
CaseEscalated per due timer, and no timer row left.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def _blocked_backends(dep) -> int:
    """Backends of this database waiting on a row lock (a worker stuck behind the test's lock)."""
    return dep.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock'")[0][0]


def _hold_case_lock(dep, number: str):
    """Lock one case row from outside, so the worker firing its timer blocks mid-batch."""
    eng = sa.create_engine(dep.url, poolclass=sa.pool.NullPool)
    conn = eng.connect()
    conn.begin()
    conn.execute(sa.text("SELECT id FROM cases WHERE number = :n FOR UPDATE"), {"n": number})
    return eng, conn


def _kill_mid_batch(dep, kill, *, replace: bool) -> None:
    numbers = dep.open_cases(30, due_in=1.0)  # one instant: the scheduler queues them as batches of 10
    last = dep.sql("SELECT c.number FROM timers t JOIN cases c ON c.id = t.case_id "
                   "ORDER BY t.id DESC LIMIT 1")[0][0]
    eng, conn = _hold_case_lock(dep, last)  # the last timer of the last batch
    try:
        dep.start_scheduler(task_size=10)
        worker = dep.start_worker("worker-doomed")
        dep.wait_for(lambda: _blocked_backends(dep) > 0, 30, "a worker blocked in the middle of a batch",
                     interval=0.05)
        fired_before = dep.breaches()
        kill(worker)
    finally:
        conn.rollback()
        conn.close()
        eng.dispose()
    assert 0 < fired_before < len(numbers), "the kill must land in the middle of the work"
    if replace:
        worker.popen.wait(10)
        dep.start_worker("worker-survivor")
    dep.wait_for(lambda: dep.breaches() >= len(numbers), 60, "every timer to fire after the kill")
    time.sleep(1.0)  # let redelivered batches run: they must change nothing
    dep.assert_each_timer_took_effect_once(numbers)


def test_sigkill_of_the_pool_process_mid_batch_fires_every_timer_once(deployment):
    """The pool process dies; ``reject_on_worker_lost`` puts its batch back at once."""

    def kill_pool(worker):
        children = worker.children()
        assert children, "the worker has pool processes"
        for pid in children:
            os.kill(pid, signal.SIGKILL)

    deployment.extra_env["GRIDFLOW_TIMER_CLAIM_SECONDS"] = "10"  # soft time limit 4 s: longer than the block
    _kill_mid_batch(deployment, kill_pool, replace=False)
    assert deployment.procs[1].alive(), "the worker itself survives and replaces its pool processes"


def test_sigkill_of_the_whole_worker_mid_batch_fires_every_timer_once(deployment):
    """Worker and pool die together; the scheduler re-offers the batch when its reservation ends."""
    deployment.extra_env["GRIDFLOW_TIMER_CLAIM_SECONDS"] = "10"
    _kill_mid_batch(deployment, lambda worker: worker.kill_group(signal.SIGKILL), replace=True)


def test_redis_flushed_while_timers_are_pending_fires_all_none_twice(deployment):
    dep = deployment
    numbers = dep.open_cases(40, due_in=6.0, spread=3.0)
    dep.start_scheduler()
    dep.start_worker()
    client = dep.redis()
    index = f"{dep.prefix}:timers:index"
    dep.wait_for(lambda: client.zcard(index) == len(numbers), 20, "the index to hold every pending timer")
    assert dep.breaches() == 0

    def flush() -> int:  # FLUSHDB, limited to this test's keys: the index, its marker and the broker queues
        keys = list(client.scan_iter(f"{dep.prefix}*"))
        return client.delete(*keys) if keys else 0

    assert flush() >= 2
    dep.wait_for(lambda: client.exists(f"{dep.prefix}:timers:marker"), 10, "the index to be rebuilt")
    assert client.zcard(index) == len(numbers)
    dep.wait_for(lambda: dep.breaches() >= 10, 20, "the first timers to fire")
    flush()  # again, with tasks queued and reservations held
    dep.wait_for(lambda: dep.breaches() >= len(numbers), 30, "every timer to fire")
    time.sleep(1.0)
    dep.assert_each_timer_took_effect_once(numbers)
    rebuilds = [r for r in dep.procs[0].json_logs() if r["msg"].startswith("timer index missing")]
    assert len(rebuilds) >= 3  # at start, and after each flush
    client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_server(port: int, tmp) -> subprocess.Popen:
    server = shutil.which("redis-server")
    assert server, "redis-server must be installed for the restart test"
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("private redis-server did not start")


def test_redis_restarted_empty_mid_run_fires_all_none_twice(deployment, tmp_path):
    """A Redis of the test's own is killed and started again empty, with work queued and in flight."""
    dep = deployment
    port = _free_port()
    server = _redis_server(port, tmp_path)
    try:
        dep.extra_env["GRIDFLOW_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
        numbers = dep.open_cases(40, due_in=3.0, spread=4.0)
        dep.start_scheduler()
        dep.start_worker()
        dep.wait_for(lambda: dep.breaches() >= 5, 30, "the first timers to fire")
        server.kill()
        server.wait()
        time.sleep(1.0)
        server = _redis_server(port, tmp_path)
        dep.wait_for(lambda: dep.breaches() >= len(numbers), 60, "every timer to fire after the restart")
        time.sleep(1.0)
        dep.assert_each_timer_took_effect_once(numbers)
    finally:
        dep.stop_all()
        server.kill()
        server.wait()


def test_stopped_scheduler_catches_up_on_restart_and_records_lateness(deployment):
    dep = deployment
    indexed = dep.open_cases(10, due_in=6.0, spread=1.0)  # known to the scheduler before it stops
    scheduler = dep.start_scheduler()
    dep.start_worker()
    client = dep.redis()
    dep.wait_for(lambda: client.zcard(f"{dep.prefix}:timers:index") == len(indexed), 20,
                 "the index to be built")
    scheduler.stop()
    assert dep.breaches() == 0
    unseen = dep.open_cases(10, due_in=1.0, spread=1.0)  # created while no scheduler runs
    last_due = dep.sql("SELECT max(due_at) FROM timers")[0][0]
    time.sleep(max(0.0, (last_due - datetime.now(timezone.utc)).total_seconds()) + 3.5)
    assert dep.breaches() == 0, "nothing fires without a scheduler"
    dep.start_scheduler("scheduler-again")
    numbers = indexed + unseen
    dep.wait_for(lambda: dep.breaches() >= len(numbers), 30, "the overdue timers to fire")
    dep.assert_each_timer_took_effect_once(numbers)
    lateness = dep.lateness()
    assert len(lateness) == len(numbers)
    assert min(lateness) >= 3.0, "each breach records how late it fired"
    client.close()


def test_two_schedulers_at_once_fire_each_timer_once(deployment):
    dep = deployment
    numbers = dep.open_cases(80, due_in=2.0, spread=3.0)
    dep.start_scheduler("scheduler-a", task_size=5)
    dep.start_scheduler("scheduler-b", task_size=5)
    dep.start_worker("worker-a")
    dep.start_worker("worker-b")
    dep.wait_for(lambda: dep.breaches() >= len(numbers), 40, "every timer to fire")
    time.sleep(1.0)
    dep.assert_each_timer_took_effect_once(numbers)
    # Both schedulers did share the work, and every firing was logged with its case and timer.
    fired = [r for p in dep.procs if p.name.startswith("worker")
             for r in p.json_logs() if r["msg"] == "timer fired"]
    assert len(fired) == len(numbers)
    assert all(r["case"] in numbers and isinstance(r["timer_id"], int) for r in fired)
    assert sorted({r["case"] for r in fired}) == sorted(numbers)


def test_database_away_briefly_workers_retry_and_recover(deployment):
    dep = deployment
    dep.extra_env["GRIDFLOW_TIMER_CLAIM_SECONDS"] = "10"  # a batch may wait out ~3.6 s of outage in place
    dbname = sa.engine.make_url(dep.url).database
    admin = sa.create_engine(sa.engine.make_url(dep.url).set(database="postgres"),
                             isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    numbers = dep.open_cases(60, due_in=1.0)
    last = dep.sql("SELECT c.number FROM timers t JOIN cases c ON c.id = t.case_id "
                   "ORDER BY t.id DESC LIMIT 1")[0][0]
    eng, conn = _hold_case_lock(dep, last)  # keeps one batch in progress until the database goes
    try:
        dep.start_scheduler()
        worker = dep.start_worker()
        dep.wait_for(lambda: _blocked_backends(dep) > 0, 30, "a batch in progress", interval=0.05)
        with admin.connect() as adm:
            adm.exec_driver_sql(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS false')
            adm.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                f"WHERE datname = '{dbname}' AND pid <> pg_backend_pid()")
            time.sleep(2.0)
    finally:
        with admin.connect() as adm:
            adm.exec_driver_sql(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS true')
        admin.dispose()
        try:
            conn.close()  # already terminated with the others
        except sa.exc.DBAPIError:
            pass
        eng.dispose()
    assert dep.breaches() < len(numbers), "the outage hit work in progress"
    dep.wait_for(lambda: dep.breaches() >= len(numbers), 40, "every timer to fire after the outage")
    time.sleep(1.0)
    dep.assert_each_timer_took_effect_once(numbers)
    retries = [r for r in worker.json_logs() if r["msg"].startswith("database unavailable, retrying")]
    assert any("timer_id" in r or "timer_ids" in r for r in retries), \
        "the worker waited the outage out in place"


def test_notifications_reach_a_flaky_webhook_once_each(deployment):
    """Breach and escalation notices leave through the outbox; a receiver that fails at first gets them \
later."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[str] = []
    failures = {"left": 4}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if failures["left"] > 0:
                failures["left"] -= 1
                self.send_response(503)
            else:
                received.append(self.headers["Idempotency-Key"])
                assert body["case"].startswith("GF-")
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dep = deployment
    dep.extra_env["GRIDFLOW_WEBHOOK_URL"] = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        numbers = dep.open_cases(5, due_in=1.0)
        dep.start_scheduler()
        dep.start_worker()
        dep.wait_for(lambda: dep.sql("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0] == 10, 40,
                     "every notification to be delivered")
    finally:
        server.shutdown()
    dep.assert_each_timer_took_effect_once(numbers)
    assert sorted(received) == sorted(set(received)) and len(received) == 10
    assert dep.sql("SELECT max(attempts) FROM outbox")[0][0] >= 2, "the failed ones were retried"
