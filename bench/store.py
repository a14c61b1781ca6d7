"""Actions per second through the service layer versus raw driver writes of the same shape.

Each service action here is one step of a suspension cycle on a case being handled (request a
suspension, approve it, resume): load the case, let the engine decide (pause or resume the handling
deadline), append the
hash-chained events, compare-and-set the case row, delete and insert timer rows,
commit. The raw baseline does the same writes by hand on the same database with
the same pragmas: one UPDATE, one event INSERT, one timer INSERT and one DELETE,
one COMMIT.

    python bench/store.py                       # SQLite, service vs raw
    python bench/store.py --postgres URL        # PostgreSQL, service vs raw psycopg
    python bench/store.py --scale               # 10,000 vs 1,000,000 stored cases (SQLite)

Last line: RESULT key=value ...
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridflow.bootstrap import bootstrap  # noqa: E402
from gridflow.engine.case import Actor  # noqa: E402
from gridflow.engine.clock import ManualClock  # noqa: E402
from gridflow.service.actions import TakeAction, take_action  # noqa: E402
from gridflow.service.intake import ReportCase, report_case  # noqa: E402
from gridflow.settings import Settings  # noqa: E402

START = datetime(2026, 9, 30, 0, 0, tzinfo=timezone.utc)
GW = Actor("gw-1", "grid_worker", "37060200100101")
CD = Actor("cd-1", "community_dispatcher", "370602001001")
DH = Actor("dh-housing", "department_handler", "dept-housing")


def make_app(url: str, clock):
    return bootstrap(Settings(database_url=url, seed_demo=True, environment="test"), clock, runner="none",
                     create_schema=True)


def handling_cases(svc, n: int) -> list[str]:
    numbers = []
    for _ in range(n):
        r = report_case(svc, ReportCase("grid_event", GW, category="C0101", description="bench"))
        take_action(svc, TakeAction(r.number, "dispatch", CD, {"department": "dept-housing"}))
        take_action(svc, TakeAction(r.number, "acknowledge", DH))
        numbers.append(r.number)
    return numbers


def bench_service(svc, clock, numbers: list[str], seconds: float) -> float:
    # 挂起 needs the community's approval (issue 11): request, approve, resume, and again.
    cycle = [("request_suspension", DH, {"reason_code": "resident_unavailable", "reason": "等待居民",
                                         "duration": "5wd"}),
             ("approve_suspension", CD, {}), ("resume", DH, {})]
    step: dict[str, int] = {}
    done = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for n in numbers:
            clock.advance(seconds=30)
            i = step.get(n, 0)
            action, actor, payload = cycle[i % len(cycle)]
            take_action(svc, TakeAction(n, action, actor, payload))
            step[n] = i + 1
            done += 1
    return done / (time.perf_counter() - t0)


def _sample_writes(url: str) -> dict:
    """What one service action really wrote (a suspend): the raw baseline repeats writes of that size."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.connect() as conn:
        case = conn.execute(sa.text("SELECT id, version, sla FROM cases "
                                    "WHERE state IN ('suspended', 'handling') "
                                    "ORDER BY id LIMIT 1")).first()
        events = conn.execute(sa.text("SELECT type, actor, role, data FROM case_events WHERE case_id = :c "
                                      "ORDER BY seq DESC LIMIT 2"), {"c": case[0]}).all()
    eng.dispose()
    sla = case[2] if isinstance(case[2], str) else json.dumps(case[2])
    return {"case_id": case[0], "version": case[1], "sla": sla,
            "events": [(e[0], e[1], e[2], e[3] if isinstance(e[3], str) else json.dumps(e[3]))
                       for e in events]}


def _raw_op(cur, w: dict, version: int, i: int, now: str, p: str) -> None:
    """One action's writes by hand: case update (same columns), 2 events, 2 timer inserts and 2 deletes."""
    cur.execute(f"UPDATE cases SET state={p}, stage={p}, escalation_level={p}, supervised={p}, closed={p}, "
                f"outcome={p}, holder_unit={p}, holder_roles={p}, sla={p}, breach_count={p}, warned={p}, "
                f"next_due_at={p}, updated_at={p}, closed_at={p}, rating={p}, event_seq={p}, last_hash={p}, "
                f"version={p} WHERE id={p} AND version={p}",
                ("suspended" if i % 2 else "handling", "response", 0, False, False, None, "dept-housing",
                 ",department_handler,", w["sla"], 0, False, now, now, None, None, 1000 + 2 * i, "%064x" % i,
                 version + 1, w["case_id"], version))
    cur.executemany(f"INSERT INTO case_events (case_id, seq, type, actor, role, data, at, prev_hash, hash) "
                    f"VALUES ({p},{p},{p},{p},{p},{p},{p},{p},{p})",
                    [(w["case_id"], 100000 + 2 * i + k, t, a, r, d, now, "0" * 64, "%064x" % (2 * i + k))
                     for k, (t, a, r, d) in enumerate(w["events"])])
    cur.executemany(f"INSERT INTO timers (case_id, key, deadline_id, kind, due_at, status, claimed_by, "
                    f"claim_expires_at, set_at_version) VALUES ({p},{p},{p},{p},{p},{p},{p},{p},{p})",
                    [(w["case_id"], f"raw.{i}/{k}@1", f"raw.{i}", k, now, "pending", None, None, version)
                     for k in ("warning", "breach")])
    cur.executemany(f"DELETE FROM timers WHERE case_id={p} AND deadline_id={p}",
                    [(w["case_id"], f"raw.{i - 1}")])


def bench_raw_sqlite(path: str, seconds: float) -> float:
    w = _sample_writes(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    cur = conn.cursor()
    version = w["version"]
    i, t0 = 0, time.perf_counter()
    now = START.replace(tzinfo=None).isoformat(sep=" ")
    while time.perf_counter() - t0 < seconds:
        i += 1
        cur.execute("BEGIN IMMEDIATE")
        _raw_op(cur, w, version, i, now, "?")
        cur.execute("COMMIT")
        version += 1
    rate = i / (time.perf_counter() - t0)
    conn.close()
    return rate


def bench_raw_postgres(url: str, seconds: float) -> float:
    import psycopg
    from sqlalchemy.engine import make_url

    w = _sample_writes(url)
    u = make_url(url)
    conn = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database)
    cur = conn.cursor()
    version = w["version"]
    i, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        i += 1
        _raw_op(cur, w, version, i, START.isoformat(), "%s")
        conn.commit()
        version += 1
    rate = i / (time.perf_counter() - t0)
    conn.close()
    return rate


def bulk_cases(path: str, count: int) -> None:
    """Fill a SQLite database with ``count`` closed cases (and their events) quickly, by hand."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    now = START.replace(tzinfo=None).isoformat(sep=" ")
    base = conn.execute("SELECT coalesce(max(id), 0) FROM cases").fetchone()[0]
    batch = []
    for k in range(1, count + 1):
        cid = base + k
        batch.append((cid, f"GF-2025-B{cid:08d}", "grid_event", 1, "closed", "closed", 0, 0, 1, "resolved",
                      "dept-housing", ",,", "37060200100101", "370602001001", "370602001", "370602", "0101",
                      "", "bench", "api", "{}", 0, 0, now, now, now, 3, 0, "0" * 64))
        if len(batch) == 20000:
            _flush(conn, batch)
            batch = []
    if batch:
        _flush(conn, batch)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _flush(conn, batch) -> None:
    conn.executemany(
        "INSERT INTO cases (id, number, workflow, workflow_version, state, stage, escalation_level, "
        "supervised, closed, outcome, holder_unit, holder_roles, origin_unit, community_code, street_code, "
        "district_code, category, title, description, channel, sla, breach_count, warned, opened_at, "
        "updated_at, closed_at, version, event_seq, last_hash) VALUES (" + ",".join("?" * 29) + ")", batch)
    conn.executemany(
        "INSERT INTO case_events (case_id, seq, type, actor, role, data, at, prev_hash, hash) "
        "VALUES (?, 1, 'CaseReported', 'gw-1', 'grid_worker', '{}', ?, ?, ?)",
        [(row[0], row[23], "0" * 64, "%064x" % row[0]) for row in batch])


def _scratch_database(admin_url: str) -> str:
    """A database of the bench's own on the server, so it never touches anyone else's data."""
    import sqlalchemy as sa

    name = f"gridflow_bench_{os.getpid()}"
    eng = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    eng.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin_url: str, url: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)')
    eng.dispose()


def run_pair(args) -> None:
    tmp = tempfile.mkdtemp(prefix="gridflow-bench-")
    clock = ManualClock(START)
    scratch = None
    if args.postgres:
        scratch = _scratch_database(args.postgres)
        url = scratch
    else:
        url = f"sqlite:///{tmp}/bench.db"
    app = make_app(url, clock)
    numbers = handling_cases(app.services, args.cases)
    service = bench_service(app.services, clock, numbers, args.seconds)
    app.close()
    raw = (bench_raw_postgres(url, args.seconds) if args.postgres
           else bench_raw_sqlite(f"{tmp}/bench.db", args.seconds))
    if scratch:
        _drop_database(args.postgres, scratch)
    db = "postgresql" if args.postgres else "sqlite"
    print(f"{db}: service {service:,.0f} actions/s, raw driver {raw:,.0f} writes/s")
    print(f"RESULT db={db} service_per_s={service:.0f} raw_per_s={raw:.0f} ratio={service / raw:.3f}")


def run_scale(args) -> None:
    figures = {}
    for label, count in (("small", args.small), ("large", args.large)):
        tmp = tempfile.mkdtemp(prefix=f"gridflow-bench-{label}-")
        path = f"{tmp}/bench.db"
        clock = ManualClock(START)
        app = make_app(f"sqlite:///{path}", clock)
        app.close()
        t0 = time.perf_counter()
        bulk_cases(path, count)
        print(f"{label}: stored {count:,} cases in {time.perf_counter() - t0:.1f}s")
        app = make_app(f"sqlite:///{path}", clock)
        numbers = handling_cases(app.services, 50)
        figures[label] = bench_service(app.services, clock, numbers, args.seconds)
        app.close()
        print(f"{label}: {figures[label]:,.0f} actions/s with {count:,} cases stored")
    ratio = figures["large"] / figures["small"]
    print(f"RESULT small_per_s={figures['small']:.0f} large_per_s={figures['large']:.0f} ratio={ratio:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--postgres", metavar="ADMIN_URL", nargs="?",
                    const="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                    help="bench PostgreSQL: the server is reached through ADMIN_URL and a scratch "
                         "database is created and dropped")
    ap.add_argument("--scale", action="store_true", help="compare 10,000 vs 1,000,000 stored cases")
    ap.add_argument("--cases", type=int, default=2000, help="cases the actions cycle over")
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    args = ap.parse_args()
    os.environ.setdefault("GRIDFLOW_LOG_LEVEL", "WARNING")
    run_scale(args) if args.scale else run_pair(args)


if __name__ == "__main__":
    main()
