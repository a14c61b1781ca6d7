"""A realistic district at 10k or 1M cases for bench/reads.py, generated once and cached.

How: a few hundred template cases are run through the real service (the demo city of
``gridflow.demo.city`` for three weeks on a :class:`ManualClock`: reports, dispatches, signing, replies,
ratings, closes, returns, extensions, suspensions, co-handling, escalations, supervision orders, plus a few
12345 hotline requests), then cloned in SQL: cases, their history (case_events), the timers of open
cases and the facts (case_facts), with offset ids and numbers, times shifted back across 12 months
(open cases by at most 30 days: a backlog, not a graveyard) and the areas permuted among equivalent
ones (streets, communities within a street, grids within a community; departments stay). Which template
each clone copies is drawn so that about 10% of cases are open and a case has about ten history events.
The summary rows (unit_day_stats) come from ``gridflow.service.stats.rebuild_summary`` when the service
has it, otherwise from one INSERT … SELECT … GROUP BY over case_facts through
:func:`gridflow.engine.tallies.tally` (a stand-in for the live maintenance).

What is NOT realistic, on purpose: the hash chains of cloned events do not verify (they are the template's
hashes), the engine's SLA bookkeeping (``cases.sla``) and the event payloads keep the template's instants
and units (the indexed columns — due_at, next_due_at, opened_at, the area columns — are shifted and
permuted), and reporter ids are the template's.

Cache: PostgreSQL database ``bench_reads_<size>``, SQLite file ``/tmp/gridflow-bench/reads_<size>.db``,
keyed by a fingerprint of this generator; a dataset whose only difference is the schema revision is
upgraded in place (alembic, as ``gridflow db upgrade``) and analysed again instead of regenerated.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gridflow.adapters.db import Database
from gridflow.adapters.orm import CaseRow, EventRow, FactRow, TimerRow
from gridflow.bootstrap import bootstrap
from gridflow.demo.city import DEFAULT_START, DemoConfig, run_demo
from gridflow.demo.seed import COMMUNITIES
from gridflow.engine.case import Actor
from gridflow.engine.clock import ManualClock
from gridflow.engine.errors import GridflowError
from gridflow.engine.tallies import STORED, tally
from gridflow.service.intake import ReportCase, report_case
from gridflow.settings import Settings

#: Bump when the generator's output changes (with the constants below, the cache fingerprint).
GENERATOR_VERSION = 1
CACHE_DIR = Path("/tmp/gridflow-bench")
TEMPLATE_DAYS = 21
TEMPLATE_PER_DAY = 18.0
#: The instant the reads are made at: the end of the template run.
NOW = DEFAULT_START + timedelta(days=TEMPLATE_DAYS)
YEAR_S = 365 * 86400
OPEN_SPREAD_S = 30 * 86400
OPEN_SHARE = 0.10
EVENTS_PER_CASE = 10.0
CLONED_TABLES = ("cases", "case_events", "case_facts", "timers", "unit_day_stats")


@dataclass
class Dataset:
    url: str
    size: int
    cases: int
    events: int
    open: int
    generated_s: float | None  # None: taken from the cache
    upgraded: bool = False

    def describe(self) -> str:
        how = (f"generated in {self.generated_s:.0f} s" if self.generated_s is not None
               else "cached" + (", schema upgraded in place" if self.upgraded else ""))
        return (f"{self.cases:,} cases ({self.open / max(self.cases, 1):.0%} open), {self.events:,} events, "
                f"{how}")


def sqlite_url(size: int) -> str:
    return f"sqlite:///{CACHE_DIR / f'reads_{size}.db'}"


def postgres_url(base: str, size: int) -> str:
    return sa.engine.make_url(base).set(database=f"bench_reads_{size}").render_as_string(hide_password=False)


def fingerprint(size: int, template_days: int) -> str:
    """What the generated data depends on (the schema revision apart: see :func:`ensure`)."""
    shape = (GENERATOR_VERSION, size, template_days, TEMPLATE_PER_DAY, OPEN_SHARE, EVENTS_PER_CASE, YEAR_S,
             OPEN_SPREAD_S, DEFAULT_START.isoformat())
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:16]


# --- cache ---------------------------------------------------------------------------------------


def _meta_path(url: str) -> Path:
    return Path(sa.engine.make_url(url).database + ".json")


def _read_meta(url: str) -> dict[str, Any] | None:
    if url.startswith("sqlite"):
        path = _meta_path(url)
        return json.loads(path.read_text()) if path.exists() and Path(path.with_suffix("")).exists() else None
    name = sa.engine.make_url(url).database
    with _admin(url) as conn:
        row = conn.execute(sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                   "WHERE datname = :n"), {"n": name}).first()
    return json.loads(row[0]) if row and row[0] else None


def _write_meta(url: str, meta: dict[str, Any]) -> None:
    if url.startswith("sqlite"):
        _meta_path(url).write_text(json.dumps(meta))
        return
    name = sa.engine.make_url(url).database
    with _admin(url) as conn:
        conn.exec_driver_sql(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(meta)}'")


class _admin:
    """An autocommit connection to the server's ``postgres`` database (to create, drop, comment)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(sa.engine.make_url(url).set(database="postgres"),
                                       isolation_level="AUTOCOMMIT")

    def __enter__(self) -> sa.Connection:
        self.conn = self.engine.connect()
        return self.conn

    def __exit__(self, *exc: Any) -> None:
        self.conn.close()
        self.engine.dispose()


def _recreate(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(sa.engine.make_url(url).database)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", ".json"):
            side = Path(str(path) + suffix)
            if side.exists():
                side.unlink()
        return
    name = sa.engine.make_url(url).database
    with _admin(url) as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')


def drop(url: str) -> None:
    """Remove a generated dataset (file or database)."""
    if url.startswith("sqlite"):
        _recreate(url)
    else:
        with _admin(url) as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)')


def ensure(url: str, size: int, *, fresh: bool = False, template_days: int = TEMPLATE_DAYS,
           log=print) -> Dataset:
    """The dataset of ``size`` cases at ``url``: from the cache when its fingerprint matches (upgrading
    the schema in place when only the revision differs), otherwise generated anew."""
    fp = fingerprint(size, template_days)
    meta = None if fresh else _read_meta(url)
    if meta and meta.get("fingerprint") == fp:
        db = Database(url)
        try:
            current, head = db.schema_status()
            upgraded = current != head
            if upgraded:
                log(f"  cached dataset at revision {current}, upgrading to {head} in place")
                db.upgrade()
                if meta.get("summary") != SERVICE_SUMMARY and _service_rebuild() is not None:
                    log("  the service can rebuild unit_day_stats now: replacing the stand-in rows")
                    meta["summary"] = _summarise(db, db.write_engine)
                    _write_meta(url, meta)
                analyze(db)
        finally:
            db.dispose()
        return Dataset(url, size, meta["cases"], meta["events"], meta["open"], None, upgraded)
    _recreate(url)
    t0 = time.perf_counter()
    counts = generate(url, size, template_days=template_days, log=log)
    elapsed = time.perf_counter() - t0
    _write_meta(url, {"fingerprint": fp, **counts, "generated_s": round(elapsed, 1),
                      "summary": SERVICE_SUMMARY if _service_rebuild() is not None else STAND_IN_SUMMARY})
    return Dataset(url, size, counts["cases"], counts["events"], counts["open"], elapsed)


# --- templates through the service ---------------------------------------------------------------


def _templates(url: str, template_days: int) -> None:
    clock = ManualClock(DEFAULT_START)
    app = bootstrap(Settings(database_url=url, seed_demo=True, environment="test"), clock, runner="inline",
                    create_schema=True)
    try:
        svc = app.services
        run_demo(svc, clock, app.runner, DemoConfig(days=template_days, cases_per_day=TEMPLATE_PER_DAY))
        operator = Actor("op-1", "hotline_operator", "370602")
        for i, (grid, category, title) in enumerate(_HOTLINE):
            try:  # 12345 requests left open at intake: another workflow on the worklists
                report_case(svc, ReportCase("hotline_request", operator, category=category, title=title,
                                            description=f"{title}（12345 来电 {i + 1}）", unit=grid,
                                            channel="hotline"))
            except GridflowError:
                pass
    finally:
        app.close()


_HOTLINE = [("37060200100101", "0102", "路灯不亮"), ("37060200100202", "0301", "楼道漏水"),
            ("37060200200103", "0801", "噪音扰民"), ("37060200200201", "0202", "垃圾堆放")]


# --- the clone plan ------------------------------------------------------------------------------


def _weights(templates: list[tuple[int, bool, int]]) -> tuple[list[int], list[float]]:
    """Template ids and their draw weights: open ones OPEN_SHARE of the mass, shorter histories more often
    so that a case has about EVENTS_PER_CASE events (the demo's cases run longer than a year's average)."""

    def mean_events(a: float) -> tuple[float, list[float]]:
        ws = [e ** -a for _, _, e in templates]
        open_mass = sum(w for w, (_, closed, _) in zip(ws, templates) if not closed) or 1.0
        closed_mass = sum(w for w, (_, closed, _) in zip(ws, templates) if closed) or 1.0
        ws = [w * (1 - OPEN_SHARE) / closed_mass if closed else w * OPEN_SHARE / open_mass
              for w, (_, closed, _) in zip(ws, templates)]
        return sum(w * e for w, (_, _, e) in zip(ws, templates)), ws

    lo, hi = 0.0, 4.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if mean_events(mid)[0] > EVENTS_PER_CASE:
            lo = mid
        else:
            hi = mid
    return [t for t, _, _ in templates], mean_events(hi)[1]


def _plan(templates: list[tuple[int, bool, int]], first_id: int, n: int, seed: int = 12):
    """(clone id, template id, shift back in seconds, area permutation) for ``n`` clones."""
    rng = random.Random(seed)
    ids, weights = _weights(templates)
    closed = {t: c for t, c, _ in templates}
    picks = rng.choices(ids, weights, k=n)
    for i, tid in enumerate(picks):
        spread = YEAR_S if closed[tid] else OPEN_SPREAD_S
        yield first_id + i, tid, rng.randrange(0, spread // 60) * 60, rng.randrange(12)


def _unit_map() -> list[tuple[int, str, str]]:
    """(permutation, code, code it becomes): 12 permutations of the demo's areas that keep every grid in
    its community and every community in its street (swap streets, swap communities, rotate grids)."""
    streets = list(COMMUNITIES)  # the two streets of the first four communities
    rows = []
    for rot in range(12):
        s_swap, c_swap, g_shift = rot % 2, (rot // 2) % 2, rot // 4
        for si, street in enumerate(streets):
            new_street = streets[si ^ s_swap]
            rows.append((rot, street, new_street))
            for ci, (community, _) in enumerate(COMMUNITIES[street]):
                new_community = COMMUNITIES[new_street][ci ^ c_swap][0]
                rows.append((rot, community, new_community))
                for g in range(3):
                    new_grid = f"{new_community}{(g + g_shift) % 3 + 1:02d}"
                    rows.append((rot, f"{community}{g + 1:02d}", new_grid))
    return rows


# --- bulk SQL ------------------------------------------------------------------------------------


class _Sql:
    """The few expressions that differ between the two databases."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def shifted(self, col: str) -> str:
        if self.pg:
            return f"{col} - p.shift * interval '1 second'"
        # naive-UTC text 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds move, the fraction stays
        return f"strftime('%Y-%m-%d %H:%M:%S', {col}, '-' || p.shift || ' seconds') || substr({col}, 20)"

    def local_day(self, col: str) -> str:
        if self.pg:
            return f"(({self.shifted(col)}) AT TIME ZONE 'Asia/Shanghai')::date"
        return f"date({col}, '+8 hours', '-' || p.shift || ' seconds')"


def _columns(table: sa.Table) -> list[str]:
    return [c.name for c in table.columns]


def _clone_select(table: sa.Table, exprs: dict[str, str], mapped: tuple[str, ...], skip: tuple[str, ...] = ()
                  ) -> tuple[str, str]:
    cols = [c for c in _columns(table) if c not in skip]
    joins = []
    out = []
    for col in cols:
        if col in exprs:
            out.append(exprs[col])
        elif col in mapped:
            alias = f"m_{col}"
            joins.append(f"LEFT JOIN bench_unit_map {alias} ON {alias}.rot = p.rot AND {alias}.old = t.{col}")
            out.append(f"COALESCE({alias}.new, t.{col})")
        else:
            out.append(f"t.{col}")
    return ", ".join(cols), f"SELECT {', '.join(out)} FROM bench_plan p JOIN {table.name} t ON " + "{on} " + \
        " ".join(joins)


def _clone(conn: sa.Connection, q: _Sql, log) -> None:
    ts = q.shifted
    statements = []
    cols, sel = _clone_select(CaseRow.__table__, {
        "id": "p.id", "number": "'GX-' || p.id", "opened_at": ts("t.opened_at"),
        "updated_at": ts("t.updated_at"), "closed_at": ts("t.closed_at"),
        "first_response_at": ts("t.first_response_at"), "next_due_at": ts("t.next_due_at"),
        "due_at": ts("t.due_at")}, ("holder_unit", "escalation_unit", "origin_unit", "community_code",
                                    "street_code"))
    statements.append(("cases", f"INSERT INTO cases ({cols}) {sel.format(on='t.id = p.tid')}"))
    cols, sel = _clone_select(EventRow.__table__, {"case_id": "p.id", "at": ts("t.at")}, (), ("id",))
    statements.append(("case_events",
                       f"INSERT INTO case_events ({cols}) {sel.format(on='t.case_id = p.tid')}"))
    cols, sel = _clone_select(FactRow.__table__, {
        "case_id": "p.id", "day": q.local_day("t.at"), "at": ts("t.at"), "occurred_at": ts("t.occurred_at"),
        "due_at": ts("t.due_at")}, ("unit", "peer", "community_code", "street_code", "grid_code"), ("id",))
    statements.append(("case_facts", f"INSERT INTO case_facts ({cols}) {sel.format(on='t.case_id = p.tid')}"))
    cols, sel = _clone_select(TimerRow.__table__, {"case_id": "p.id", "due_at": ts("t.due_at"),
                                                   "status": "'pending'", "claimed_by": "NULL",
                                                   "claim_expires_at": "NULL"}, (), ("id",))
    statements.append(("timers", f"INSERT INTO timers ({cols}) {sel.format(on='t.case_id = p.tid')}"))
    for table, sql in statements:
        t0 = time.perf_counter()
        n = conn.exec_driver_sql(sql).rowcount
        log(f"  cloned {n:>11,} {table} rows in {time.perf_counter() - t0:6.1f} s")


def _summary_sql(conn: sa.Connection) -> str:
    """unit_day_stats from case_facts in one statement, each counter a sum over the fact shapes that
    :func:`tally` adds to it (the stand-in for the service's own rebuild)."""
    shapes = conn.execute(sa.text("SELECT DISTINCT kind, detail, on_time FROM case_facts")).all()

    def lit(v: Any) -> str:
        return "'" + str(v).replace("'", "''") + "'"

    def shape_cond(kind: str, detail: str | None, on_time: Any) -> str:
        d = "detail IS NULL" if detail is None else f"detail = {lit(detail)}"
        o = "on_time IS NULL" if on_time is None else ("on_time = TRUE" if on_time else "on_time = FALSE")
        return f"(kind = {lit(kind)} AND {d} AND {o})"

    sums = []
    for name in STORED:
        conds = [shape_cond(k, d, o) for k, d, o in shapes
                 if name in tally(k, d, None if o is None else bool(o))]
        sums.append(f"SUM(CASE WHEN {' OR '.join(conds)} THEN n ELSE 0 END)" if conds else "0")
    keys = ["day", "COALESCE(unit, '')", "COALESCE(district_code, '')", "COALESCE(street_code, '')",
            "COALESCE(community_code, '')", "COALESCE(grid_code, '')"]
    names = ["day", "unit", "district_code", "street_code", "community_code", "grid_code"]
    inner = (f"SELECT {', '.join(f'{k} AS {n}' for k, n in zip(keys, names))}, kind, detail, on_time, "
             f"COUNT(*) AS n FROM case_facts GROUP BY {', '.join(keys)}, kind, detail, on_time")
    return (f"INSERT INTO unit_day_stats ({', '.join(names)}, {', '.join(STORED)}) "
            f"SELECT {', '.join(names)}, {', '.join(sums)} FROM ({inner}) g GROUP BY {', '.join(names)}")


def _plain_indexes(conn: sa.Connection, pg: bool) -> list[tuple[str, str]]:
    """(name, DDL) of the indexes on the cloned tables that back no constraint: dropped while loading."""
    tables = ", ".join(f"'{t}'" for t in CLONED_TABLES)
    if pg:
        return [tuple(r) for r in conn.exec_driver_sql(
            f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN "
            f"({tables}) AND indexname NOT IN (SELECT conname FROM pg_constraint)")]
    return [tuple(r) for r in conn.exec_driver_sql(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
        f"({tables})")]


def analyze(db: Database) -> None:
    if db.is_sqlite:
        with db.write_engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        return
    eng = sa.create_engine(db.url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    eng.dispose()


def _load_plan(conn: sa.Connection, pg: bool, rows) -> None:
    conn.exec_driver_sql("CREATE TABLE bench_unit_map (rot INTEGER, old VARCHAR(64), new VARCHAR(64), "
                         "PRIMARY KEY (rot, old))")
    conn.exec_driver_sql("CREATE TABLE bench_plan (id BIGINT PRIMARY KEY, tid BIGINT NOT NULL, "
                         "shift BIGINT NOT NULL, rot INTEGER NOT NULL)")
    raw = conn.connection.driver_connection
    if pg:
        with raw.cursor() as cur:
            with cur.copy("COPY bench_unit_map (rot, old, new) FROM STDIN") as copy:
                for r in _unit_map():
                    copy.write_row(r)
            with cur.copy("COPY bench_plan (id, tid, shift, rot) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        return
    cur = raw.cursor()
    cur.executemany("INSERT INTO bench_unit_map VALUES (?, ?, ?)", _unit_map())
    cur.executemany("INSERT INTO bench_plan VALUES (?, ?, ?, ?)", rows)


def generate(url: str, size: int, *, template_days: int = TEMPLATE_DAYS, log=print) -> dict[str, int]:
    t0 = time.perf_counter()
    _templates(url, template_days)
    db = Database(url)
    pg = not db.is_sqlite
    q = _Sql("postgresql" if pg else "sqlite")
    engine = db.write_engine if pg else sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if pg:
                conn.exec_driver_sql("SET synchronous_commit = off")
                conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
            else:
                for pragma in ("journal_mode = DELETE", "synchronous = OFF", "cache_size = -400000",
                               "temp_store = MEMORY"):
                    conn.exec_driver_sql(f"PRAGMA {pragma}")
                conn.commit()
            templates = [(r[0], bool(r[1]), max(int(r[2]), 1)) for r in conn.exec_driver_sql(
                "SELECT id, closed, event_seq FROM cases ORDER BY id")]
            n_templates = len(templates)
            log(f"  {n_templates} template cases through the service in {time.perf_counter() - t0:.1f} s")
            first = max(t for t, _, _ in templates) + 1
            _load_plan(conn, pg, list(_plan(templates, first, max(0, size - n_templates))))
            indexes = _plain_indexes(conn, pg)
            for name, _ in indexes:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
            conn.exec_driver_sql("DELETE FROM unit_day_stats")
            _clone(conn, q, log)
            t1 = time.perf_counter()
            for _, ddl in indexes:
                conn.exec_driver_sql(ddl)
            log(f"  indexes rebuilt in {time.perf_counter() - t1:.1f} s")
            conn.exec_driver_sql("DROP TABLE bench_plan")
            conn.exec_driver_sql("DROP TABLE bench_unit_map")
            if pg:
                for table in ("cases", "case_events", "case_facts", "timers"):
                    conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                         f"(SELECT max(id) FROM {table}))")
            conn.commit()
        t1 = time.perf_counter()
        how = _summarise(db, engine)
        log(f"  unit_day_stats ({how}) in {time.perf_counter() - t1:.1f} s")
        t1 = time.perf_counter()
        if not pg:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        analyze(db)
        log(f"  {'VACUUM ANALYZE' if pg else 'ANALYZE'} in {time.perf_counter() - t1:.1f} s")
        with engine.connect() as conn:
            cases, open_ = conn.exec_driver_sql("SELECT COUNT(*), SUM(CASE WHEN closed THEN 0 ELSE 1 END) "
                                                "FROM cases").one()
            events = conn.exec_driver_sql("SELECT COUNT(*) FROM case_events").scalar_one()
    finally:
        if engine is not db.write_engine:
            engine.dispose()
        db.dispose()
    return {"cases": int(cases), "open": int(open_), "events": int(events), "templates": n_templates}


SERVICE_SUMMARY = "service.stats.rebuild_summary"
STAND_IN_SUMMARY = "stand-in: INSERT … SELECT … GROUP BY over case_facts through engine.tallies.tally"


def _service_rebuild():
    from gridflow.service import stats

    return getattr(stats, "rebuild_summary", None)


def _summarise(db: Database, engine: sa.Engine) -> str:
    """Fill unit_day_stats from case_facts: the service's rebuild when it has one, else the stand-in."""
    rebuild = _service_rebuild()
    if rebuild is not None:
        app = bootstrap(Settings(database_url=db.url, environment="test"), ManualClock(NOW), runner="none",
                        seed=False)
        try:
            rebuild(app.services)
        finally:
            app.close()
        return SERVICE_SUMMARY
    with engine.connect() as conn:
        conn.exec_driver_sql("DELETE FROM unit_day_stats")
        conn.exec_driver_sql(_summary_sql(conn))
        conn.commit()
    return STAND_IN_SUMMARY

