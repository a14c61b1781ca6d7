"""The read side at 10,000 and 1,000,000 stored cases, on SQLite and PostgreSQL (issue 12).

Each read is made through the service call a user's request makes (warm, ``--calls`` times, p50/p99),
and beside it, in the same run, the hand-written SQL fetching the same rows (the best this bench's
author could write by hand on that database): the ratio hand/service says how far the service is from
what the database can do (target ≥ 0.5).

    python bench/reads.py                                  # both databases, 10k and 1M, 100 calls
    python bench/reads.py --db sqlite --sizes 10000 --calls 20
    python bench/reads.py --explain                        # also write docs/read-plans.md (largest size)
    python bench/reads.py --fresh                          # regenerate the cached datasets

The datasets (bench/read_dataset.py) are cached: PostgreSQL databases ``bench_reads_<size>``, SQLite
files ``/tmp/gridflow-bench/reads_<size>.db``. Cloned cases' hash chains do not verify and their SLA
bookkeeping keeps the template's instants (see bench/read_dataset.py): no read here depends on either.
The machine is shared: figures are noisy; compare runs made close together.

Last line: RESULT worklist_p99_ms=… stats_year_ms=… export_month_s=… worklist_ratio=… growth=…
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench import read_dataset as rd  # noqa: E402
from gridflow.bootstrap import bootstrap  # noqa: E402
from gridflow.engine.calendar import LOCAL_ZONE  # noqa: E402
from gridflow.engine.clock import ManualClock  # noqa: E402
from gridflow.service.auth import Caller  # noqa: E402
from gridflow.service.case_view import get_case, history  # noqa: E402
from gridflow.service.exports import export_rows  # noqa: E402
from gridflow.service.lists import CaseFilter, list_cases, worklist  # noqa: E402
from gridflow.service.stats import sla_stats  # noqa: E402
from gridflow.settings import Settings  # noqa: E402

PG_DEFAULT = os.environ.get("GRIDFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DOC = Path(__file__).resolve().parent.parent / "docs" / "read-plans.md"

DEPARTMENT = Caller("dh-urban", "department_handler", "dept-urban")
COMMUNITY = Caller("cd-1", "community_dispatcher", "370602001001")
STREET = Caller("sd-1", "street_dispatcher", "370602001")
SUPERVISOR = Caller("sv-1", "supervisor", "370602")
STREET_CODE = "370602001"
LIST_FILTER = CaseFilter(closed=False, stage="response")
#: The month of the month-long reads: the last full local month before rd.NOW (October 2026).
MONTH = (date(2026, 10, 1), date(2026, 10, 31))
YEAR = ((rd.NOW.astimezone(LOCAL_ZONE) - timedelta(days=365)).date(), (rd.NOW.astimezone(LOCAL_ZONE)
                                                                      - timedelta(days=1)).date())
PAGE = 50
#: The fewest timed calls of a read, whatever its time budget.
MIN_CALLS = 5
#: What each read is, as the table and docs/read-plans.md name it.
LABELS = {
    "worklist_department": "worklist, department (dh-urban, 50 most urgent)",
    "worklist_community": "worklist, community (cd-1 at 海港社区, 50 most urgent)",
    "list_filtered": "case list, street's open cases in stage response, first page",
    "stats_month": "/stats/sla, one street, one month (October)",
    "stats_year": "/stats/sla, one street, 12 months",
    "export_month": "export, one street, one month (October)",
    "case_view": "case view with deadlines",
    "case_history": "case history",
}
#: Reads whose growth counts in RESULT growth.
GROWTH_READS = ("worklist_department", "worklist_community", "list_filtered", "stats_month", "stats_year")


def local_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL_ZONE)


# --- timing --------------------------------------------------------------------------------------


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[max(0, min(len(s) - 1, int(len(s) * q + 0.999999) - 1))]


@dataclass
class Timing:
    p50_ms: float
    p99_ms: float
    calls: int
    rows: int = 0

    @classmethod
    def of(cls, fn: Callable[[int], int], calls: int, budget_s: float, warm: int = 2) -> "Timing":
        """``calls`` timed calls after ``warm`` untimed ones; a read slower than ``budget_s`` in all
        stops early, after at least MIN_CALLS (its p99 is then the worst of those)."""
        rows = 0
        for i in range(warm):
            rows = fn(i)
        samples: list[float] = []
        start = time.perf_counter()
        for i in range(calls):
            t0 = time.perf_counter()
            rows = fn(i)
            samples.append((time.perf_counter() - t0) * 1000)
            if len(samples) >= MIN_CALLS and time.perf_counter() - start > budget_s:
                break
        return cls(pct(samples, 0.5), pct(samples, 0.99), len(samples), rows)


@dataclass
class Measured:
    read: str
    service: Timing
    hand: Timing
    same_rows: bool

    @property
    def ratio(self) -> float:
        return self.hand.p50_ms / self.service.p50_ms if self.service.p50_ms else float("nan")


# --- the reads -----------------------------------------------------------------------------------


@dataclass
class Read:
    name: str
    service: Callable[[int], Any]  # call number -> result
    hand: Callable[[int], Any]
    key: Callable[[Any], Any]  # result -> what "the same rows" compares
    calls: int | None = None  # fewer calls for the slow ones
    note: str = ""
    rows: Callable[[Any], int] = len


@dataclass
class Bench:
    svc: Any
    engine: sa.Engine
    pg: bool
    numbers: list[str] = field(default_factory=list)

    def q(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()

    def reads(self) -> list[Read]:
        svc = self.svc
        m_from, m_to = local_midnight(MONTH[0]), local_midnight(MONTH[1] + timedelta(days=1))
        month_filter = CaseFilter(reported_from=m_from, reported_to=m_to)
        return [
            Read("worklist_department",
                 lambda i: _cases(worklist(svc, DEPARTMENT, PAGE)), lambda i: self.hand_worklist_department(),
                 lambda r: [c.number for c in r]),
            Read("worklist_community",
                 lambda i: _cases(worklist(svc, COMMUNITY, PAGE)), lambda i: self.hand_worklist_community(),
                 lambda r: [c.number for c in r]),
            Read("list_filtered",
                 lambda i: _cases(list_cases(svc, STREET, LIST_FILTER, limit=PAGE)),
                 lambda i: self.hand_list(), lambda r: [c.number for c in r]),
            Read("stats_month",
                 lambda i: sla_stats(svc, SUPERVISOR, STREET_CODE, *MONTH),
                 lambda i: self.hand_stats(*MONTH), _stats_key, rows=lambda r: 1),
            Read("stats_year",
                 lambda i: sla_stats(svc, SUPERVISOR, STREET_CODE, *YEAR),
                 lambda i: self.hand_stats(*YEAR), _stats_key, rows=lambda r: 1),
            Read("export_month",
                 lambda i: list(export_rows(svc, STREET, month_filter)),
                 lambda i: self.hand_export(m_from, m_to), lambda r: len(r), calls=3),
            Read("case_view",
                 lambda i: get_case(svc, STREET, self.numbers[i % len(self.numbers)]),
                 lambda i: self.hand_case(self.numbers[i % len(self.numbers)]),
                 lambda r: r.number if hasattr(r, "number") else r[0].number, rows=lambda r: 1),
            Read("case_history",
                 lambda i: history(svc, STREET, self.numbers[i % len(self.numbers)]),
                 lambda i: self.hand_history(self.numbers[i % len(self.numbers)]),
                 lambda r: [e.seq for e in r]),
        ]

    # The hand-written SQL: what one would write knowing the data and the indexes.

    def _urgent(self, where: str) -> str:
        return (f"SELECT * FROM cases WHERE closed = FALSE AND {where} "
                f"ORDER BY due_at NULLS LAST, id LIMIT {PAGE}")

    def hand_worklist_department(self) -> list[Any]:
        u = DEPARTMENT.unit
        held = self.q(self._urgent("holder_unit = :u AND holder_roles LIKE '%,department_handler,%'"), u=u)
        co = self.q(self._urgent("co_units LIKE :cu"), cu=f"%,{u},%")
        return _merge_urgent(held, co)

    def hand_worklist_community(self) -> list[Any]:
        c = COMMUNITY.unit
        mine = self.q(self._urgent(
            "community_code = :c AND (holder_roles LIKE '%,community_dispatcher,%' "
            "OR (holder_unit = :c AND holder_roles LIKE '%,department_handler,%') "
            "OR (origin_unit = :c AND holder_roles LIKE '%,grid_worker,%'))"), c=c)
        held = self.q(self._urgent("holder_unit = :c AND (community_code IS NULL OR community_code <> :c) "
                                   "AND holder_roles LIKE '%,community_dispatcher,%'"), c=c)
        return _merge_urgent(mine, held)

    def hand_list(self) -> list[Any]:
        return self.q(f"SELECT * FROM cases WHERE street_code = :s AND closed = FALSE AND stage = 'response' "
                      f"ORDER BY id DESC LIMIT {PAGE}", s=STREET_CODE)

    def hand_stats(self, d_from: date, d_to: date) -> list[Any]:
        from gridflow.engine.tallies import STORED

        sums = ", ".join(f"SUM({n}) AS {n}" for n in STORED)
        return self.q(f"SELECT unit, {sums} FROM unit_day_stats WHERE (street_code = :s OR unit = :s) "
                      f"AND day >= :a AND day <= :b GROUP BY unit", s=STREET_CODE, a=d_from, b=d_to)

    def hand_export(self, m_from: datetime, m_to: datetime) -> list[Any]:
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(sa.text(
                "SELECT number, workflow, state, stage, category, title, description, address, lat, lon, "
                "reporter_name, reporter_phone, holder_unit, escalation_level, supervised, opened_at, "
                "closed_at, outcome, rating, breach_count FROM cases WHERE street_code = :s "
                "AND opened_at >= :a AND opened_at < :b ORDER BY id"),
                {"s": STREET_CODE, "a": _bind_ts(m_from, self.pg), "b": _bind_ts(m_to, self.pg)})
            return [r for r in result]

    def hand_case(self, number: str) -> list[Any]:
        return self.q("SELECT * FROM cases WHERE number = :n", n=number)

    def hand_history(self, number: str) -> list[Any]:
        return self.q("SELECT e.* FROM case_events e JOIN cases c ON c.id = e.case_id WHERE c.number = :n "
                      "ORDER BY e.seq", n=number)


def _cases(result: Any) -> list[Any]:
    """The cases of a page (``.data``) or of a plain list: worklists may return pages with cursors."""
    return list(getattr(result, "data", result))


def _bind_ts(at: datetime, pg: bool) -> Any:
    from datetime import timezone

    utc = at.astimezone(timezone.utc)
    return utc if pg else utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _merge_urgent(*parts: list[Any]) -> list[Any]:
    seen: dict[int, Any] = {}
    for part in parts:
        for r in part:
            seen.setdefault(r.id, r)
    far = "9999-12-31"
    rows = sorted(seen.values(), key=lambda r: (r.due_at is None, str(r.due_at or far), r.id))
    return rows[:PAGE]


def _stats_key(result: Any) -> Any:
    if hasattr(result, "total"):
        return (result.total.receipts, result.total.received, result.total.resolved)
    return (sum(r.receipts for r in result), sum(r.received for r in result), sum(r.resolved for r in result))


def _hand_key(read: Read, result: Any) -> Any:
    if read.name in ("stats_month", "stats_year"):
        return _stats_key(result)
    if read.name == "export_month":
        return len(result)
    if read.name == "case_view":
        return result[0].number
    if read.name == "case_history":
        return [r.seq for r in result]
    return [r.number for r in result]


# --- one database at one size --------------------------------------------------------------------


def open_app(url: str):
    return bootstrap(Settings(database_url=url, environment="test", log_level="WARNING"),
                     ManualClock(rd.NOW), runner="none", seed=False, create_schema=False)


def sample_numbers(engine: sa.Engine, n: int = 100) -> list[str]:
    """Case numbers for the case view: open and closed ones from across the id range."""
    with engine.connect() as conn:
        hi = conn.exec_driver_sql("SELECT MAX(id) FROM cases").scalar_one()
        step = max(1, hi // n)
        return [r[0] for r in conn.execute(sa.text(
            "SELECT number FROM cases WHERE street_code = :s AND id % :step = 0 ORDER BY id LIMIT :n"),
            {"s": STREET_CODE, "step": step, "n": n})] or [r[0] for r in conn.exec_driver_sql(
                "SELECT number FROM cases LIMIT 5")]


def measure(url: str, calls: int, only: set[str] | None = None, log=print, budget_s: float = 60.0
            ) -> dict[str, Measured]:
    app = open_app(url)
    svc = app.services
    engine = svc.db.read_engine
    b = Bench(svc, engine, not svc.db.is_sqlite, sample_numbers(engine))
    out: dict[str, Measured] = {}
    try:
        for read in b.reads():
            if only and read.name not in only:
                continue
            n = min(calls, read.calls) if read.calls else calls
            service_result, hand_result = read.service(0), read.hand(0)
            same = read.key(service_result) == _hand_key(read, hand_result)
            s = Timing.of(lambda i: read.rows(read.service(i)), n, budget_s)
            h = Timing.of(lambda i: len(read.hand(i)), n, budget_s)
            out[read.name] = Measured(read.name, s, h, same)
            log(f"  {read.name:20s} service p50 {s.p50_ms:9.2f} p99 {s.p99_ms:9.2f} ms ({s.calls} calls) | "
                f"hand p50 {h.p50_ms:8.2f} ms ({h.calls}) | ratio {out[read.name].ratio:5.2f} | {s.rows} rows"
                + ("" if same else "  (hand-written rows DIFFER)"))
    finally:
        app.close()
    return out


# --- plans (--explain) ---------------------------------------------------------------------------


def capture(url: str) -> dict[str, list[tuple[str, Any]]]:
    """The SQL statements each service read issues during one call, with their parameters."""
    app = open_app(url)
    svc = app.services
    engine = svc.db.read_engine
    b = Bench(svc, engine, not svc.db.is_sqlite, sample_numbers(engine))
    out: dict[str, list[tuple[str, Any]]] = {}
    current: list[tuple[str, Any]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "alembic_version" not in statement:
            current.append((statement, parameters))

    try:
        for read in b.reads():
            read.service(0)  # warm: unit directory and catalogue loaded
            current = []
            sa.event.listen(engine, "before_cursor_execute", listener)
            try:
                result = read.service(1)
                if read.name == "export_month":
                    len(result)
            finally:
                sa.event.remove(engine, "before_cursor_execute", listener)
            out[read.name] = _distinct(current)
    finally:
        app.close()
    return out


def _distinct(statements: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    seen, out = set(), []
    for sql, params in statements:
        if "FROM units" in sql and "cases" not in sql:
            continue  # the unit directory's refresh check, not the read
        if sql not in seen:
            seen.add(sql)
            out.append((sql, params))
    return out


def explain(url: str, statements: list[tuple[str, Any]]) -> list[tuple[str, Any, str]]:
    db_is_pg = not url.startswith("sqlite")
    eng = sa.create_engine(url)
    out = []
    try:
        with eng.connect() as conn:
            raw = conn.connection.driver_connection
            cur = raw.cursor()
            if db_is_pg:
                cur.execute("SET max_parallel_workers_per_gather = DEFAULT")
            for sql, params in statements:
                prefix = "EXPLAIN (ANALYZE, BUFFERS) " if db_is_pg else "EXPLAIN QUERY PLAN "
                cur.execute(prefix + sql, params)
                rows = cur.fetchall()
                plan = "\n".join(r[0] for r in rows) if db_is_pg else "\n".join(
                    _sqlite_plan_line(rows, r) for r in rows)
                out.append((sql, params, plan))
            raw.rollback()
    finally:
        eng.dispose()
    return out


def _sqlite_plan_line(rows: list[Any], row: Any) -> str:
    depth, parent = 0, row[1]
    by_id = {r[0]: r for r in rows}
    while parent in by_id:
        depth += 1
        parent = by_id[parent][1]
    return "  " * depth + str(row[3])


PARAGRAPHS = {
    "worklist_department":
        "A department handler's worklist: open cases its unit holds with the handler role, most urgent "
        "first, plus its open co-handling parts (a second query). It stays flat only if the database can "
        "walk an index of open cases on (holder_unit, due_at, id) in order and stop after 50 rows, "
        "without sorting the unit's whole open backlog.",
    "worklist_community":
        "A community dispatcher's worklist: its scope is an OR over community_code, holder_unit and "
        "reporter_id, and the roles it works an OR of LIKE patterns. It stays flat only if an index on "
        "open cases by community (ordered by due_at) serves the scope; otherwise the whole community's "
        "history is read.",
    "list_filtered":
        "A street dispatcher's open cases in stage response, newest first (keyset by id). It stays flat "
        "when the plan filters open cases by street from an index instead of scanning cases backwards by "
        "id through closed ones.",
    "stats_month":
        "三率 of one street for one month (October 2026), counted by the service from case_facts joined to "
        "cases. It stays flat only if it reads a per-day summary or an index on the period and the unit's "
        "column; an OR over five columns scans every fact.",
    "stats_year":
        "The same over 12 months. A sum over about 365 summary rows per unit is the flat plan; counting "
        "facts grows with every case ever stored.",
    "export_month":
        "Every case of one street reported in October, masked, for a spreadsheet. One streamed query on "
        "(street_code, opened_at) is the flat plan; re-queries with LIMIT re-run the OR and a sort each "
        "time.",
    "case_view":
        "One case by number (unique index) with its deadlines explained in Python: flat by construction.",
    "case_history":
        "One case's history by (case_id, seq) (the unique constraint's index): flat by construction.",
}


def _access(plan: str) -> str:
    """How the plan reaches its rows: index range searches, and tables read in full (PostgreSQL
    ``Seq Scan``; SQLite ``SCAN``, possibly in an index's order, which is still every row)."""
    pg_index = r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)"
    searched = set(re.findall(pg_index, plan))
    searched |= set(re.findall(r"SEARCH \w+ USING (?:COVERING )?INDEX (\w+)", plan))
    searched |= {"primary key" for _ in re.findall(r"SEARCH \w+ USING INTEGER PRIMARY KEY", plan)}
    full = {f"{t} (seq scan)" for t in re.findall(r"Seq Scan on (\w+)", plan)}
    for table, index in re.findall(r"^\s*SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", plan, flags=re.M):
        full.add(f"{table} (in the order of {index})" if index else table)
    return (f"Index searches: {', '.join(sorted(searched)) or 'none'}; "
            f"read in full: {', '.join(sorted(full)) or 'nothing'}.")


def write_plans(per_db: dict[str, tuple[int, dict[str, list[tuple[str, Any, str]]]]],
                results: dict[str, dict[int, dict[str, Measured]]]) -> None:
    lines = [
        "# Query plans of the read side (generated)",
        "",
        "Generated by `python bench/reads.py --explain` (add `--db` / `--sizes` as needed; the plans are",
        "taken on the largest size measured): for every read of bench/reads.py, the SQL the service actually",
        "issued during one call (captured with a SQLAlchemy `before_cursor_execute` listener; the unit",
        "directory's refresh check left out) and its plan — PostgreSQL `EXPLAIN (ANALYZE, BUFFERS)`, SQLite",
        "`EXPLAIN QUERY PLAN` — on the cached bench datasets (bench/read_dataset.py). Do not edit by hand:",
        "regenerate it after changing a query or an index.",
        "",
    ]
    for db_name, (size, _) in per_db.items():
        lines.append(f"- {db_name}: plans at {size:,} cases")
    lines.append("")
    names = list(PARAGRAPHS)
    for name in names:
        lines += [f"## {name}: {LABELS[name]}", "", PARAGRAPHS[name], ""]
        for db_name, (size, plans) in per_db.items():
            growth = _growth_of(results.get(db_name, {}), name)
            for i, (sql, params, plan) in enumerate(plans.get(name, []), start=1):
                lines += [f"### {db_name}, statement {i} of {len(plans[name])}", "",
                          _access(plan) + (f" Measured p99 growth of the read: {growth}." if growth else ""),
                          "",
                          "```sql", sql.strip(), "```", "", f"Parameters: `{params!r}`", "",
                          "```", plan, "```", ""]
    DOC.write_text("\n".join(lines))


def _growth_of(by_size: dict[int, dict[str, Measured]], name: str) -> str:
    sizes = sorted(by_size)
    if len(sizes) < 2 or name not in by_size[sizes[0]] or name not in by_size[sizes[-1]]:
        return ""
    lo, hi = by_size[sizes[0]][name].service.p99_ms, by_size[sizes[-1]][name].service.p99_ms
    return f"{hi / lo:.1f}×"


# --- the table -----------------------------------------------------------------------------------


def _fmt_ms(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def table(db_name: str, by_size: dict[int, dict[str, Measured]]) -> list[str]:
    sizes = sorted(by_size)
    lo, hi = sizes[0], sizes[-1]
    head = [f"{db_name} {lo:,} p99"] + ([f"{hi:,} p99", "growth"] if hi != lo else [])
    head += [f"hand-written p50 at {hi:,}", "ratio hand/service", f"calls at {hi:,}"]
    lines = ["| read | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name in PARAGRAPHS:
        if name not in by_size[hi]:
            continue
        m_lo, m_hi = by_size[lo].get(name), by_size[hi][name]
        cells = [_fmt_ms(m_lo.service.p99_ms) if m_lo else "—"]
        if hi != lo:
            cells += [_fmt_ms(m_hi.service.p99_ms),
                      f"{m_hi.service.p99_ms / m_lo.service.p99_ms:.1f}×" if m_lo else "—"]
        cells += [_fmt_ms(m_hi.hand.p50_ms),
                  f"{m_hi.ratio:.2f}" + ("" if m_hi.same_rows else " (rows differ)"),
                  f"{m_hi.service.calls}/{m_hi.hand.calls}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ex = by_size[hi].get("export_month")
    if ex is not None and ex.service.rows:
        secs = ex.service.p50_ms / 1000
        lines.append(f"export at {hi:,}: {ex.service.rows:,} rows in {secs:.2f} s (p50): "
                     f"{ex.service.rows / secs:,.0f} rows/s, "
                     f"{secs * 10000 / ex.service.rows:.2f} s per 10k rows")
    return lines


def result_line(results: dict[str, dict[int, dict[str, Measured]]]) -> str:
    """PostgreSQL's figures at its largest size when measured, else SQLite's."""
    db_name = "postgres" if "postgres" in results else next(iter(results))
    by_size = results[db_name]
    sizes = sorted(by_size)
    top, low = by_size[sizes[-1]], by_size[sizes[0]]
    worklists = [top[n] for n in ("worklist_department", "worklist_community") if n in top]
    figures = {
        "worklist_p99_ms": lambda: f"{max(m.service.p99_ms for m in worklists):.1f}",
        "stats_year_ms": lambda: f"{top['stats_year'].service.p99_ms:.1f}",
        "export_month_s": lambda: f"{_per_10k(top['export_month']):.2f}",
        "worklist_ratio": lambda: f"{min(m.ratio for m in worklists):.2f}",
        "growth": lambda: f"{_growth(top, low):.1f}" if len(sizes) > 1 else "nan",
    }
    out = []
    for key, fn in figures.items():
        try:
            out.append(f"{key}={fn()}")
        except (KeyError, ValueError, ZeroDivisionError):
            out.append(f"{key}=nan")
    return "RESULT " + " ".join(out)


def _growth(top: dict[str, Measured], low: dict[str, Measured]) -> float:
    """Worst p99 growth over worklists, lists and stats."""
    return max(top[n].service.p99_ms / low[n].service.p99_ms for n in GROWTH_READS if n in top and n in low)


def _per_10k(m: Measured) -> float:
    """Seconds per 10,000 exported rows (p50 of the export calls)."""
    return m.service.p50_ms / 1000 * 10000 / m.service.rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds per read and side: a slower read stops early (after at least 5 calls)")
    parser.add_argument("--explain", action="store_true", help="write docs/read-plans.md")
    parser.add_argument("--fresh", action="store_true", help="regenerate the cached datasets")
    parser.add_argument("--postgres", default=PG_DEFAULT, help="server URL (its database is not used)")
    parser.add_argument("--reads", default="", help="comma-separated subset of the reads")
    args = parser.parse_args(argv)
    logging.getLogger("gridflow").setLevel(logging.ERROR)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    only = {r for r in args.reads.split(",") if r} or None
    results: dict[str, dict[int, dict[str, Measured]]] = {}
    plans: dict[str, tuple[int, dict[str, list[tuple[str, Any, str]]]]] = {}
    for db_name in dbs:
        for size in sizes:
            url = rd.sqlite_url(size) if db_name == "sqlite" else rd.postgres_url(args.postgres, size)
            print(f"{db_name} {size:,}: preparing dataset", flush=True)
            ds = rd.ensure(url, size, fresh=args.fresh, log=lambda m: print(m, flush=True))
            print(f"{db_name} {size:,}: {ds.describe()}", flush=True)
            results.setdefault(db_name, {})[size] = measure(url, args.calls, only, budget_s=args.budget)
            if args.explain and size == max(sizes):
                captured = capture(url)
                plans[db_name] = (size, {name: explain(url, stmts) for name, stmts in captured.items()})
    print()
    print(f"Warm, {args.calls} calls per read (export: 3; a read slower than {args.budget:.0f} s in all "
          f"stops after at least {MIN_CALLS}: see the calls column), p50/p99 of wall time per call; shared "
          "machine: noisy.")
    print(f"Filters: list = {LIST_FILTER}; stats month {MONTH[0]}..{MONTH[1]}, year {YEAR[0]}..{YEAR[1]}.")
    print("Reads: " + "; ".join(f"{name} = {label}" for name, label in LABELS.items()) + ".")
    for db_name, by_size in results.items():
        print()
        print("\n".join(table(db_name, by_size)))
    if args.explain:
        write_plans(plans, results)
        print(f"\nwrote {DOC}")
    print(result_line(results))


if __name__ == "__main__":
    main()
