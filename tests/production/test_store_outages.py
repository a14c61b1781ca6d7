"""The embedded API under store outages, with real processes: a lock another process holds, a full disk,
and the outbox meeting a lock between sending and recording.

The API runs as a real uvicorn process on a SQLite file (thread timer runner, demo organisation); the
lock is held by a second process (``BEGIN IMMEDIATE``); the full disk is a small tmpfs filled up.
Cases are opened from the test process on a manual clock set back, so deadlines fall due in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from .support import DEADLINE, DISPATCHER, WORKFLOWS

pytestmark = [pytest.mark.slow]

API_CODE = ("import uvicorn; from gridflow.api.app import create_app; import sys; "
            "uvicorn.run(create_app(), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')")
HOLD_CODE = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
             "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(float(sys.argv[2]))")
GRID = "37060200100101"
WRITER = {"X-API-Key": "demo-grid-worker"}
READER = {"X-API-Key": "demo-community"}
REPORT = {"category": "C0501", "title": "楼道漏水", "unit": GRID}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(path: Path, **extra):
    from gridflow.settings import Settings

    return Settings(database_url=f"sqlite:///{path}", workflows_dir=WORKFLOWS, seed_demo=True, **extra)


def open_cases(path: Path, n: int, due_in: float) -> list[str]:
    """Create the database (schema, demo organisation) and ``n`` fault_drill cases due ``due_in`` s \
from now."""
    from gridflow.bootstrap import bootstrap
    from gridflow.engine.clock import ManualClock
    from gridflow.service.intake import ReportCase, report_case

    clock = ManualClock(datetime.now(timezone.utc) + timedelta(seconds=due_in) - DEADLINE)
    app = bootstrap(_settings(path), clock, runner="none")
    try:
        return [report_case(app.services, ReportCase("fault_drill", DISPATCHER, category="C0101",
                                                     title=f"drill {i}")).number
                for i in range(n)]
    finally:
        app.close()


class ApiProcess:
    """``create_app()`` under uvicorn in a process of its own, configured by environment."""

    def __init__(self, path: Path, log: Path, **env: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
        full.update(GRIDFLOW_DATABASE_URL=f"sqlite:///{path}", GRIDFLOW_WORKFLOWS_DIR=str(WORKFLOWS),
                    GRIDFLOW_TIMER_POLL_INTERVAL="0.2", GRIDFLOW_SQLITE_WRITE_WAIT="1.0",
                    GRIDFLOW_HEALTH_RUNNER_FAILURES="3", PYTHONUNBUFFERED="1")
        full.update(env)
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-c", API_CODE, str(self.port)], env=full,
                                     stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the API exited: {log.read_text()[-2000:]}"
            try:
                httpx.get(f"{self.base}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"the API did not start: {log.read_text()[-2000:]}")

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.base}/healthz", timeout=10)

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; health: {self.health().text}\n"
                             + self.log.read_text()[-3000:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def api_process(tmp_path):
    started: list[ApiProcess] = []

    def start(path: Path, **env: str) -> ApiProcess:
        proc = ApiProcess(path, tmp_path / f"api-{len(started)}.log", **env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding SQLite's write lock for ``seconds``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_CODE, str(path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


async def _storm(base: str, writes: int, number: str) -> tuple[list, list]:
    """``writes`` reports at once, and reads timed while they wait: [(seconds, response)] of each."""

    async def timed(request):
        start = time.perf_counter()
        response = await request
        return time.perf_counter() - start, response

    limits = httpx.Limits(max_connections=writes + 10, max_keepalive_connections=writes + 10)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        pending = [asyncio.create_task(timed(client.post("/api/v1/cases", json=REPORT, headers=WRITER)))
                   for _ in range(writes)]
        await asyncio.sleep(0.3)  # the writers are in: waiting for the lock, or refused
        reads = []
        for _ in range(4):
            reads.append(await timed(client.get(f"/api/v1/cases/{number}", headers=READER)))
            reads.append(await timed(client.get("/healthz")))
            await asyncio.sleep(0.05)
        return await asyncio.gather(*pending), reads


def test_a_lock_held_by_another_process_fails_writes_fast_and_never_slows_reads(tmp_path, api_process):
    db = tmp_path / "gridflow.db"
    open_cases(db, 1, due_in=3600)
    api = api_process(db)
    number = httpx.post(f"{api.base}/api/v1/cases", json=REPORT, headers=WRITER).json()["number"]
    holder = hold_lock(db, 6.0)
    try:
        writes, reads = asyncio.run(_storm(api.base, 60, number))  # more writers than request threads (40)
        # the write probe's answer stands 2 s: within that, health sees the lock (the runner's failed
        # polls may name it first, as runner_failing)
        api.wait_for(lambda: "database_locked" in api.health().json().get("reasons", []), 3,
                     "health to see the lock")
        health = api.health()
    finally:
        holder.kill()
        holder.wait()
    slowest_read = max(t for t, _ in reads)
    assert all(r.status_code in (200, 503) for _, r in reads), [r.text for _, r in reads]
    assert slowest_read < 1.0, f"a read waited {slowest_read:.2f}s behind writers blocked on the lock"
    assert [r.status_code for _, r in reads if r.url.path.startswith("/api")] == [200] * 4
    assert {r.status_code for _, r in writes} == {503}
    assert all(r.headers["Retry-After"] and r.json()["code"] == "database_unavailable" for _, r in writes)
    slowest_write = max(t for t, _ in writes)
    assert slowest_write < 3.0, f"a write was held {slowest_write:.1f}s (the write wait is 1 s)"
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert "database_locked" in health.json()["reasons"]
    api.wait_for(lambda: api.health().status_code == 200, 10, "health to be ok once the lock is gone")
    assert httpx.post(f"{api.base}/api/v1/cases", json=REPORT, headers=WRITER).status_code == 201


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MiB tmpfs (root only), unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> Path:
    """Fill the disk to the last byte: every write that needs room from now on fails."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_named_by_health_writes_get_503_and_everything_recovers(small_disk, api_process):
    db = small_disk / "gridflow.db"
    open_cases(db, 0, due_in=0)
    api = api_process(db)
    numbers = open_cases(db, 3, due_in=2.5)  # due once the disk is full
    filler = _fill(small_disk)
    try:
        api.wait_for(lambda: api.health().status_code == 503, 15, "health to see the full disk")
        body = api.health().json()
        assert body["status"] == "degraded" and "writes_refused" in body["reasons"], body
        api.wait_for(lambda: "runner_failing" in api.health().json()["reasons"], 15,
                     "the runner's failed polls to show")
        refused = httpx.post(f"{api.base}/api/v1/cases", json=REPORT, headers=WRITER, timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"], refused.text
        assert refused.json()["code"] == "database_unavailable"
        read = httpx.get(f"{api.base}/api/v1/cases/{numbers[0]}", headers=READER, timeout=10)
        assert read.status_code == 200 and read.json()["state"] == "waiting"
    finally:
        filler.unlink()
    api.wait_for(lambda: api.health().json()["status"] == "ok", 20, "health to recover with the disk")

    def escalated() -> bool:
        return all(httpx.get(f"{api.base}/api/v1/cases/{n}", headers=READER).json()["escalation_level"]
                   for n in numbers)

    api.wait_for(escalated, 10, "the due timers to fire")
    assert httpx.post(f"{api.base}/api/v1/cases", json=REPORT, headers=WRITER).status_code == 201


class DedupingHook(BaseHTTPRequestHandler):
    """Drops repeats by Idempotency-Key (and counts them); the first request has another process take the
    database's write lock for longer than the write wait: a lock between sending and recording."""

    keys: set[str] = set()
    repeats = 0
    db: Path
    holders: list[subprocess.Popen] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        if not cls.holders:
            cls.holders.append(hold_lock(cls.db, 3.0))
        key = self.headers["Idempotency-Key"]
        cls.repeats += key in cls.keys
        cls.keys.add(key)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_notifications_sent_before_a_lock_are_not_sent_again(tmp_path, api_process):
    db = tmp_path / "gridflow.db"
    numbers = open_cases(db, 6, due_in=2.0)  # 6 breaches, 6 escalations: 12 notifications
    hook = type("Hook", (DedupingHook,), {"keys": set(), "repeats": 0, "db": db, "holders": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = api_process(db, GRIDFLOW_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/hook",
                          GRIDFLOW_SQLITE_WRITE_WAIT="0.5", GRIDFLOW_SQLITE_BUSY_TIMEOUT="0.5")
        api.wait_for(lambda: len(hook.keys) == 12, 20, "every notification to be posted")
        api.wait_for(lambda: api.health().json()["status"] == "ok", 20, "the lock to be gone")

        def outbox() -> list[str]:
            import sqlite3

            with sqlite3.connect(db) as conn:
                return [r[0] for r in conn.execute("SELECT status FROM outbox ORDER BY id")]

        api.wait_for(lambda: outbox() == ["sent"] * 12, 10, "each row marked sent once the lock is gone")
    finally:
        server.shutdown()
        for holder in hook.holders:
            holder.kill()
            holder.wait()
    assert hook.repeats == 0, f"{hook.repeats} of 12 notifications were sent twice"
    assert len(numbers) == 6
