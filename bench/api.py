"""What the HTTP API costs per case action, against a bare FastAPI endpoint doing one SQLite write.

Both sides run the same way: one uvicorn process (one worker, no access log) on a SQLite file in WAL
mode, driven for a fixed time by a second process keeping ``--concurrency`` requests in flight.

- api: ``POST /api/v1/cases/{number}/actions/{action}`` on the embedded default (``gridflow serve``'s
  app, thread timer runner included), each case cycling acknowledge → return_case → dispatch with the
  demo keys — authentication, scope check, engine decision, hash-chained events, timers, commit.
- bare: a FastAPI endpoint that updates one row of a table in its own SQLite file (same pragmas,
  ``BEGIN IMMEDIATE`` … ``COMMIT``) and returns a small JSON body.

    .venv/bin/python bench/api.py [--seconds 8] [--rounds 3] [--concurrency 8] [--cases 64]

Last line: ``RESULT api_per_s=… bare_per_s=… ratio=… p99_ms=…`` (ratio = api / bare, target >= 0.6;
p99 is the api side's request latency as the driver sees it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GRID = "37060200100101"
#: Each case cycles dispatched → reported → dispatched (the community recalls what the department has not
#: signed for yet, and dispatches it again): (action, key, payload) by current state. A cycle through
#: 退单 would not repeat: since issue 11 a second return goes to the street for review.
NEXT = {"dispatched": ("recall", "demo-community", {"reason": "派错部门"}),
        "reported": ("dispatch", "demo-community", {"department": "dept-housing"})}
CYCLE = [NEXT["dispatched"], NEXT["reported"]]


# --- the bare side ------------------------------------------------------------------------------

def bare_app():
    """uvicorn factory: one endpoint, one single-row SQLite write per request."""
    from fastapi import FastAPI

    path = os.environ["BENCH_BARE_DB"]
    local = threading.local()

    def conn() -> sqlite3.Connection:
        c = getattr(local, "conn", None)
        if c is None:
            c = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA busy_timeout=30000")
            local.conn = c
        return c

    app = FastAPI()

    @app.post("/bare/{row_id}")
    def write(row_id: int) -> dict:
        c = conn()
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE items SET version = version + 1, updated_at = ? WHERE id = ?",
                  (time.time(), row_id))
        version = c.execute("SELECT version FROM items WHERE id = ?", (row_id,)).fetchone()[0]
        c.execute("COMMIT")
        return {"id": row_id, "version": version}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    return app


def _prepare_bare(path: Path, rows: int) -> None:
    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, updated_at REAL)")
    c.executemany("INSERT INTO items (id, version, updated_at) VALUES (?, 0, 0)",
                  [(i,) for i in range(1, rows + 1)])
    c.commit()
    c.close()


# --- the api side -------------------------------------------------------------------------------

def _prepare_api(url: str, cases: int) -> list[str]:
    """The demo organisation and ``cases`` cases dispatched to the housing department."""
    from gridflow.bootstrap import bootstrap
    from gridflow.engine.case import Actor
    from gridflow.service.actions import TakeAction, take_action
    from gridflow.service.intake import ReportCase, report_case
    from gridflow.settings import Settings

    gf = bootstrap(Settings(database_url=url), runner="none")
    try:
        numbers = []
        for i in range(cases):
            n = report_case(gf.services, ReportCase("grid_event", Actor("gw-1", "grid_worker", GRID),
                                                    title=f"bench {i}")).number
            take_action(gf.services, TakeAction(n, "dispatch",
                                                Actor("cd-1", "community_dispatcher", "370602001001"),
                                                {"department": "dept-housing"}))
            numbers.append(n)
        return numbers
    finally:
        gf.close()


# --- driving ------------------------------------------------------------------------------------

async def _drive(base: str, mode: str, seconds: float, concurrency: int, targets: list[str]) -> dict:
    import httpx

    latencies: list[float] = []
    failures: dict[str, int] = {}
    stop = 0.0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def lane(client: httpx.AsyncClient, mine: list[str], step: dict[str, int]) -> None:
        i = 0
        while time.perf_counter() < stop:
            target = mine[i % len(mine)]
            i += 1
            if mode == "bare":
                req = client.post(f"{base}/bare/{target}")
            else:
                action, token, payload = CYCLE[step[target] % len(CYCLE)]
                req = client.post(f"{base}/api/v1/cases/{target}/actions/{action}", json=payload,
                                  headers={"X-API-Key": token})
            t0 = time.perf_counter()
            try:
                r = await req
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                key = (f"{r.status_code} "
                       f"""{r.json().get('code', '')
                            if r.headers.get('content-type', '').endswith('json') else ''}""")
                failures[key] = failures.get(key, 0) + 1
                if r.status_code >= 500:
                    sys.stderr.write(f"{time.strftime('%X')} {r.status_code} {r.text[:300]}\n")
            elif mode == "api":
                step[target] += 1

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        step = {n: 0 for n in targets}
        if mode == "api":  # pick up each case where the previous round left it (not timed)
            for n in targets:
                state = (await client.get(f"{base}/api/v1/cases/{n}",
                                          headers={"X-API-Key": "demo-admin"})).json()
                step[n] = CYCLE.index(NEXT[state["state"]])
        lanes = [targets[i::concurrency] for i in range(concurrency)]
        stop = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(lane(client, mine, step) for mine in lanes if mine))
        elapsed = time.perf_counter() - started
    latencies.sort()
    errors = sum(failures.values())
    ok = len(latencies) - sum(v for k, v in failures.items() if k[:1].isdigit())
    return {"mode": mode, "requests": len(latencies), "errors": errors, "failures": failures,
            "per_s": ok / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(target: str, env: dict[str, str], port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{target} did not start")


def _run_driver(base: str, mode: str, args, targets: list[str]) -> dict:
    """The load comes from a second process, as a real client would."""
    out = subprocess.run([sys.executable, __file__, "--drive", base, "--mode", mode,
                          "--seconds", str(args.seconds), "--concurrency", str(args.concurrency),
                          "--targets", ",".join(targets)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; each side's best counts")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(asyncio.run(_drive(args.drive, args.mode, args.seconds, args.concurrency,
                                            args.targets.split(",")))))
        return

    with tempfile.TemporaryDirectory(prefix="gridflow-bench-") as tmp:
        api_db = Path(tmp) / "api.db"
        bare_db = Path(tmp) / "bare.db"
        numbers = _prepare_api(f"sqlite:///{api_db}", args.cases)
        _prepare_bare(bare_db, args.cases)
        sides = {
            "api": ("gridflow.api.app:create_app", {"GRIDFLOW_DATABASE_URL": f"sqlite:///{api_db}",
                                                     "GRIDFLOW_LOG_LEVEL": "WARNING"}, numbers),
            "bare": ("bench.api:bare_app", {"BENCH_BARE_DB": str(bare_db), "PYTHONPATH": str(ROOT)},
                     [str(i) for i in range(1, args.cases + 1)]),
        }
        servers = {mode: (port := _free_port(), _serve(target, env, port))
                   for mode, (target, env, _) in sides.items()}
        results: dict[str, dict] = {}
        try:
            for round_ in range(1, args.rounds + 1):  # alternate the sides, keep each side's best round
                for mode in ("api", "bare"):
                    r = _run_driver(f"http://127.0.0.1:{servers[mode][0]}", mode, args, sides[mode][2])
                    print(f"round {round_} {mode:4s} {r['per_s']:8.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                          f"p99 {r['p99_ms']:6.1f} ms  ({r['requests']} requests, {r['errors']} errors "
                          f"{r['failures'] or ''})")
                    if mode not in results or r["per_s"] > results[mode]["per_s"]:
                        results[mode] = r
        finally:
            for _, proc in servers.values():
                proc.terminate()
                proc.wait(20)
    api, bare = results["api"], results["bare"]
    print(f"RESULT api_per_s={api['per_s']:.1f} bare_per_s={bare['per_s']:.1f} "
          f"ratio={api['per_s'] / bare['per_s']:.2f} p99_ms={api['p99_ms']:.1f}")


if __name__ == "__main__":
    main()
