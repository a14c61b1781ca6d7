"""The SQL case repository: cases (as ``StoredCase``), history, timers, idempotency keys, the outbox.

All statements run inside the caller's unit of work; nothing here commits. The
write path (every action and timer firing) uses SQLAlchemy Core on the unit of
work's connection: rows are decoded straight into the engine's snapshot by the
codec, which keeps an action to a handful of cached, precompiled statements.
Database failures leave here as gridflow's own errors (``engine.errors``).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import sqlalchemy as sa
from sqlmodel import Session, select

from ..engine.case import CaseSnapshot, Notification, TimerSpec
from ..engine.definition import WorkflowDefinition
from ..engine.duplicates import OpenCase
from ..engine.facts import Fact
from ..engine.tallies import STORED, add_up, month_of, tally
from ..engine.errors import CaseNotFound, ConcurrentWrite, DuplicateKey, StoreUnavailable, VersionConflict
from .codec import case_columns, snapshot_from
from .db import UNAVAILABLE
from . import channels
from .orm import (UNIT_DAY_STATS, UNIT_MONTH_STATS, CaseRow, EventRow, FactRow, IdempotencyRow, OutboxRow,
                  TimerRow)
from .ports import CaseRepository, CaseUpdate, NewCase, PriorResult, StoredCase, TakenTimer

CASES = CaseRow.__table__
EVENTS = EventRow.__table__
TIMERS = TimerRow.__table__
OUTBOX = OutboxRow.__table__
IDEMPOTENCY = IdempotencyRow.__table__
FACTS = FactRow.__table__
SUMMARY = UNIT_DAY_STATS
MONTHLY = UNIT_MONTH_STATS

_GET_BY_NUMBER = sa.select(CASES).where(CASES.c.number == sa.bindparam("number"))
_GET_BY_ID = sa.select(CASES).where(CASES.c.id == sa.bindparam("id"))
def _update_for(columns: tuple[str, ...]) -> sa.Update:
    """The compare-and-set of a case row for a set of columns (compiled once per set by ``_prepared``)."""
    return (sa.update(CASES)
            .where(CASES.c.id == sa.bindparam("_case_id"), CASES.c.version == sa.bindparam("_expected"))
            .values({CASES.c[c]: sa.bindparam(c) for c in columns + ("version",)}))


class _Prepared:
    """A statement compiled once per dialect and run straight on the DBAPI cursor.

    The hot path of every action issues the same few writes; SQLAlchemy compiles
    them (so SQL text and type conversions stay SQLAlchemy's), and we skip its
    per-execution machinery, which costs more than the write itself on SQLite.
    """

    __slots__ = ("sql", "plan", "procs")

    def __init__(self, stmt, dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.procs = compiled._bind_processors
        # positional paramstyles (sqlite's qmark) get a plan; named ones (psycopg's pyformat) a dict
        names = compiled.positiontup
        self.plan = [(n, self.procs.get(n)) for n in names] if names is not None else None

    def params(self, values: Mapping[str, Any]):
        if self.plan is not None:
            return tuple(values[n] if p is None else p(values[n]) for n, p in self.plan)
        procs = self.procs
        return {n: (procs[n](v) if n in procs else v) for n, v in values.items()}


_PREPARED: dict[tuple[str, Any], _Prepared] = {}


def _prepared(key: Any, build, dialect) -> _Prepared:
    k = (dialect.name, key)
    p = _PREPARED.get(k)
    if p is None:
        p = _PREPARED[k] = _Prepared(build(), dialect)
    return p


_EVENT_COLUMNS = ("case_id", "seq", "type", "actor", "role", "data", "at", "prev_hash", "hash")
_OUTBOX_COLUMNS = ("case_id", "kind", "payload", "status", "attempts", "next_attempt_at", "created_at",
                   "last_error")
_FACT_COLUMNS = ("case_id", "seq", "workflow", "unit", "kind", "day", "at", "occurred_at", "role", "on_time",
                 "detail", "ref", "due_at", "peer", "community_code", "street_code", "district_code",
                 "grid_code")
_FACT_FIELDS = ("seq", "unit", "kind", "at", "occurred_at", "role", "on_time", "detail", "ref", "due_at",
                "peer")
_GET_FACTS = (sa.select(*(FACTS.c[f] for f in _FACT_FIELDS)).where(FACTS.c.case_id == sa.bindparam("case_id"))
              .order_by(FACTS.c.id))
#: The key of a summary row: local day, unit and the case's area ("" where the case has none).
SUMMARY_KEY = ("day", "unit", "district_code", "street_code", "community_code", "grid_code")
_AREA = ("district_code", "street_code", "community_code", "grid_code")


def _summary_upsert(table: sa.Table, counters: tuple[str, ...], dialect) -> Any:
    """Add to the named counters of the summary row with its key (the row created at zero when missing);
    the key's first column (``day`` or ``month``) is bound as ``day``. One statement per set of counters:
    a change adds to one to three of them, so the row's other columns stay untouched."""
    from sqlalchemy.dialects import postgresql, sqlite

    key = [c.name for c in table.primary_key.columns]
    insert = (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(table)
    stmt = insert.values({table.c[key[0]]: sa.bindparam("day"),
                          **{table.c[c]: sa.bindparam(c) for c in key[1:] + list(counters)}})
    return stmt.on_conflict_do_update(index_elements=key,
                                      set_={c: table.c[c] + stmt.excluded[c] for c in counters})


_TIMER_COLUMNS = ("case_id", "key", "deadline_id", "kind", "due_at", "status", "claimed_by",
                  "claim_expires_at", "set_at_version")


_READERS: dict[str, list[tuple[str, Any]]] = {}


def _case_readers(dialect) -> list[tuple[str, Any]]:
    """(column name, result processor) for every case column, in table order."""
    readers = _READERS.get(dialect.name)
    if readers is None:
        readers = _READERS[dialect.name] = [(c.name, _reader(c.type, dialect)) for c in CASES.columns]
    return readers


def _reader(type_, dialect):
    try:
        return type_._cached_result_processor(dialect, None)
    except (TypeError, sa.exc.InvalidRequestError):
        return None  # the driver already returns the Python type (psycopg's numerics)


_CASE_DEFAULTS = {c.name: (c.default.arg if c.default is not None and not callable(c.default.arg) else None)
                  for c in CASES.columns if c.name != "id"}
#: NewCase fields stored under their own name
_FILED_AS_IS = ("workflow", "state", "origin_unit", "community_code", "street_code", "district_code",
                "category", "title", "description", "channel", "lat", "lon", "address", "reporter_id",
                "reporter_name", "reporter_phone", "resident_token_hash", "opened_at")
_RACE = "a concurrent change wrote the same key first; reload the case and try again"


class Definitions(Protocol):
    """Where the repository finds a case's workflow rules (the service's workflow catalog)."""

    def get(self, name: str, version: int | None = None) -> WorkflowDefinition: ...


def _stored(col: Mapping[str, Any], snapshot: CaseSnapshot) -> StoredCase:
    return StoredCase(id=col["id"], snapshot=snapshot, version=col["version"], event_seq=col["event_seq"],
                      last_hash=col["last_hash"], escalation_unit=col["escalation_unit"],
                      community_code=col["community_code"], street_code=col["street_code"],
                      district_code=col["district_code"], first_response_at=col["first_response_at"])


def _outbox_row(case_id: int, n: Notification, now: datetime | None) -> dict[str, Any]:
    return {"case_id": case_id, "kind": n.kind, "created_at": now, "next_attempt_at": now,
            "status": "pending", "attempts": 0, "last_error": None,
            "payload": {"case": n.case, "roles": list(n.roles), "unit": n.unit, "message": n.message,
                        "data": dict(n.data)}}


class SqlCaseRepository(CaseRepository):
    """Cases and everything hanging off them, on the unit of work's connection."""

    def __init__(self, uow, definitions: Definitions) -> None:
        self.uow = uow
        self.definitions = definitions
        self.conn: sa.Connection = uow.connection
        self.dialect = self.conn.dialect.name
        self._cursor = None
        self._cas = None
        self._in_batch = False

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    def _cursor_for(self):
        if self._cursor is None:
            self._cursor = self.conn.connection.dbapi_connection.cursor()
        return self._cursor

    def _run(self, prepared: _Prepared, rows: Sequence[Mapping[str, Any]], cursor=None) -> int:
        """Execute on a DBAPI cursor of this unit of work's connection (same transaction)."""
        cur = cursor or self._cursor_for()
        with self._wrapped(prepared.sql, cur):
            if len(rows) == 1:
                cur.execute(prepared.sql, prepared.params(rows[0]))
            else:
                cur.executemany(prepared.sql, [prepared.params(r) for r in rows])
            return cur.rowcount

    @contextmanager
    def _wrapped(self, sql: str, cur=None) -> Iterator[None]:
        """Driver errors on the raw cursor become gridflow's: a unique key taken by a concurrent writer is
        a ConcurrentWrite, anything else StoreUnavailable; dead connections are dropped."""
        dbapi = self.conn.dialect.loaded_dbapi
        try:
            yield
        except dbapi.IntegrityError as exc:
            raise ConcurrentWrite(_RACE, cause=str(exc)) from exc
        except dbapi.Error as exc:
            if self.conn.dialect.is_disconnect(exc, self.conn.connection.dbapi_connection, cur):
                self.conn.invalidate(exc)
            raise StoreUnavailable(UNAVAILABLE, cause=str(exc), retry_after=1) from exc

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Send the writes of one decision together.

        On PostgreSQL they go out in one pipeline (one network round trip instead of one per
        statement); the compare-and-set on the case version is checked when the pipeline syncs,
        before anything can commit. On SQLite there is no network to save.
        """
        if self.dialect != "postgresql":
            yield
            return
        dbapi_conn = self.conn.connection.dbapi_connection
        self._cas = None
        self._in_batch = True
        try:
            with self._wrapped("pipeline"):
                with dbapi_conn.pipeline():
                    yield
        finally:
            self._in_batch = False
        if self._cas is not None:
            cur, number, expected = self._cas
            self._cas = None
            self._check_cas(cur.rowcount, number, expected)

    @staticmethod
    def _check_cas(count: int, number: str, expected_version: int) -> None:
        if count != 1:
            raise VersionConflict(
                f"case {number} changed while this action was being decided (expected version "
                f"{expected_version}); reload it and try again", number=number, expected=expected_version)

    @property
    def session(self) -> Session:
        return self.uow.session

    # --- cases, as the service decides on them ------------------------------------------------

    def load(self, number: str) -> StoredCase:
        return self._decoded(self._fetch_by_number(number))

    def load_by_id(self, case_id: int) -> StoredCase:
        return self._decoded(self._fetch_by_id(case_id))

    def take_timer(self, timer_id: int) -> TakenTimer | None:
        """Remove a timer row and load its case: (key, due_at, case), or None if it is gone.

        Deleting is the claim: a second firer of the same timer waits on the row lock and then
        finds nothing. Rolled back with the rest of the firing if anything fails. On PostgreSQL
        the delete and the case load are one statement (a data-modifying CTE).
        """
        dialect = self.conn.dialect
        due_proc = TIMERS.c.due_at.type._cached_result_processor(dialect, None)
        if self.dialect == "postgresql":
            def build():
                taken = (sa.delete(TIMERS).where(TIMERS.c.id == sa.bindparam("timer_id"))
                         .returning(TIMERS.c.key, TIMERS.c.due_at, TIMERS.c.case_id).cte("taken"))
                return (sa.select(taken.c.key, taken.c.due_at, CASES)
                        .join(CASES, CASES.c.id == taken.c.case_id))

            self._run(_prepared("take_timer", build, dialect), [{"timer_id": timer_id}])
            raw = self._cursor.fetchone()
            if raw is None:
                return None
            due_at = due_proc(raw[1]) if due_proc else raw[1]
            return TakenTimer(raw[0], due_at, self._decoded(self._columns(raw[2:])))
        self._run(_prepared("take_timer",
                            lambda: sa.delete(TIMERS).where(TIMERS.c.id == sa.bindparam("timer_id"))
                            .returning(TIMERS.c.key, TIMERS.c.due_at, TIMERS.c.case_id), dialect),
                  [{"timer_id": timer_id}])
        raw = self._cursor.fetchone()
        if raw is None:
            return None
        return TakenTimer(raw[0], due_proc(raw[1]) if due_proc else raw[1], self.load_by_id(raw[2]))

    def add(self, new: NewCase, number_for: Callable[[int], str]) -> StoredCase:
        """Insert the row (counters, flags and the chain head take the table's defaults), then number it."""
        full = dict(_CASE_DEFAULTS)
        full.update({name: getattr(new, name) for name in _FILED_AS_IS})
        full.update(workflow_version=new.version, attachments=[dict(a) for a in new.attachments],
                    updated_at=new.opened_at)
        case_id = self.conn.execute(sa.insert(CASES).values(**full).returning(CASES.c.id)).scalar_one()
        number = number_for(case_id)
        self.conn.execute(sa.update(CASES).where(CASES.c.id == case_id).values(number=number))
        return self._decoded({**full, "id": case_id, "number": number})

    def save(self, case: StoredCase, update: CaseUpdate) -> StoredCase:
        """Write one decision together: compare-and-set the case row, events, timers, outbox."""
        snap = update.case
        values = case_columns(snap, self.definitions.get(snap.workflow, snap.version))
        if update.escalation_unit is not None:
            values["escalation_unit"] = update.escalation_unit
        elif snap.escalation_level == 0 and case.escalation_unit is not None:
            values["escalation_unit"] = None  # de-escalated (CaseDeescalated): no unit above works it now
        if update.first_response_at is not None:
            values["first_response_at"] = update.first_response_at
        last = update.events[-1] if update.events else None
        values.update(event_seq=last.seq if last else case.event_seq,
                      last_hash=last.hash if last else case.last_hash)
        with self.batch():
            version = self._compare_and_set(case, values)
            self._append_events(case.id, update)
            self.cancel(case.id, update.cancel)
            self.schedule(case.id, update.schedule, version)
            self.outbox([_outbox_row(case.id, n, update.queued_at) for n in update.notifications])
            self.add_facts(case, update.facts)
        return StoredCase(case.id, snap, version, values["event_seq"], values["last_hash"],
                          values.get("escalation_unit", case.escalation_unit), case.community_code,
                          case.street_code, case.district_code,
                          values.get("first_response_at", case.first_response_at))

    def open_case_ids(self, workflow: str, *, other_than_version: int) -> list[int]:
        """Open cases of a workflow on any version but one (the cases a migration moves)."""
        return [r[0] for r in self.conn.execute(
            sa.select(CASES.c.id).where(CASES.c.workflow == workflow, CASES.c.closed.is_(False),
                                        CASES.c.workflow_version != other_than_version).order_by(CASES.c.id))]

    def _compare_and_set(self, case: StoredCase, values: dict[str, Any]) -> int:
        """Compare-and-set on ``version``: a writer that read an older version matches no row."""
        expected_version = case.version
        new_version = expected_version + 1
        columns = tuple(sorted(values))
        prepared = _prepared(("update", columns), lambda: _update_for(columns), self.conn.dialect)
        params = [{**values, "version": new_version, "_case_id": case.id, "_expected": expected_version}]
        if self._in_batch:
            # Inside batch(): its own cursor, so its row count survives the later statements.
            cur = self.conn.connection.dbapi_connection.cursor()
            self._run(prepared, params, cursor=cur)
            self._cas = (cur, case.number, expected_version)
        else:
            self._check_cas(self._run(prepared, params), case.number, expected_version)
        return new_version

    def _decoded(self, col: Mapping[str, Any]) -> StoredCase:
        defn = self.definitions.get(col["workflow"], col["workflow_version"])
        return _stored(col, snapshot_from(col, defn.escalation.top))

    # --- rows, for readers (history, audit, tests) ---------------------------------------------

    def get(self, number: str) -> CaseRow:
        """The stored row of a case (detached), for readers that show columns rather than decide."""
        return CaseRow(**self._fetch_by_number(number))

    def _fetch_by_number(self, number: str) -> dict[str, Any]:
        self._run(_prepared("get", lambda: _GET_BY_NUMBER, self.conn.dialect), [{"number": number}])
        raw = self._cursor.fetchone()
        if raw is None:
            raise CaseNotFound(f"no case {number!r}", number=number)
        return self._columns(raw)

    def _fetch_by_id(self, case_id: int) -> dict[str, Any]:
        self._run(_prepared("get_by_id", lambda: _GET_BY_ID, self.conn.dialect), [{"id": case_id}])
        raw = self._cursor.fetchone()
        if raw is None:
            raise CaseNotFound(f"no case with id {case_id}", id=case_id)
        return self._columns(raw)

    def _columns(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {name: (proc(v) if proc is not None and v is not None else v)
                for (name, proc), v in zip(_case_readers(self.conn.dialect), raw)}

    # --- history ------------------------------------------------------------------------------

    def _append_events(self, case_id: int, update: CaseUpdate) -> None:
        if update.events:
            rows = [{"case_id": case_id, "seq": e.seq, "type": e.type, "actor": e.actor, "role": e.role,
                     "data": e.data, "at": e.at, "prev_hash": e.prev_hash, "hash": e.hash}
                    for e in update.events]
            self._run(_prepared("events", lambda: sa.insert(EVENTS).values(
                {EVENTS.c[c]: sa.bindparam(c) for c in _EVENT_COLUMNS}), self.conn.dialect), rows)

    def events(self, case_id: int) -> list[EventRow]:
        return list(self.session.exec(select(EventRow).where(EventRow.case_id == case_id)
                                      .order_by(EventRow.seq)))

    # --- statistical facts ---------------------------------------------------------------------

    def facts(self, case_id: int) -> list[Fact]:
        rows = self.conn.execute(_GET_FACTS, {"case_id": case_id})
        return [Fact(**dict(zip(_FACT_FIELDS, r))) for r in rows]

    def open_cases_like(self, *, category: str, since: datetime | None,
                        box: tuple[float, float, float, float] | None, phone: str | None,
                        phone_since: datetime | None, limit: int = 200) -> list[OpenCase]:
        """Two index range scans over open cases (``ix_cases_open_category``: category, opened_at;
        ``ix_cases_open_phone``: reporter_phone, opened_at), not one OR over the table."""
        c = CASES.c
        cols = (c.number, c.category, c.opened_at, c.lat, c.lon, c.reporter_phone)
        arms = []
        if category and since is not None and box is not None:
            lat0, lat1, lon0, lon1 = box
            arms.append(sa.select(*cols).where(c.closed == sa.false(), c.category == category,
                                               c.opened_at >= since, c.lat.between(lat0, lat1),
                                               c.lon.between(lon0, lon1)).limit(limit))
        if phone and phone_since is not None:
            arms.append(sa.select(*cols).where(c.closed == sa.false(), c.reporter_phone == phone,
                                               c.opened_at >= phone_since).limit(limit))
        found: dict[str, OpenCase] = {}
        for arm in arms:
            for r in self.conn.execute(arm):
                found[r.number] = OpenCase(r.number, r.category, r.opened_at, r.lat, r.lon, r.reporter_phone)
        return list(found.values())

    def add_facts(self, case: StoredCase, facts: Sequence[Fact], *, summary: bool = True) -> None:
        """Insert a case's new facts, with the workflow and the area codes they are counted under, and add
        them to the summary rows of their day, unit and area (``unit_day_stats``), in key order (two
        writers adding to the same rows never wait on each other in a cycle)."""
        if not facts:
            return
        where = {"case_id": case.id, "workflow": case.snapshot.workflow,
                 "community_code": case.community_code, "street_code": case.street_code,
                 "district_code": case.district_code, "grid_code": case.snapshot.origin_unit}
        rows = [{**where, "day": f.day, **{name: getattr(f, name) for name in _FACT_FIELDS}} for f in facts]
        self._run(_prepared("facts", lambda: sa.insert(FACTS).values(
            {FACTS.c[c]: sa.bindparam(c) for c in _FACT_COLUMNS}), self.conn.dialect), rows)
        if summary:
            self._add_to_summaries(where, facts)

    def _add_to_summaries(self, where: Mapping[str, Any], facts: Sequence[Fact]) -> None:
        """Add the facts' counters to their daily and monthly summary rows, in key order (two writers
        adding to the same rows queue on a row, never in a cycle)."""
        area = {c: where[c] or "" for c in _AREA}
        for table, monthly in ((SUMMARY, False), (MONTHLY, True)):
            for (day, unit), counts in sorted(add_up(facts, monthly=monthly).items(),
                                              key=lambda kv: (kv[0][0], kv[0][1] or "")):
                names = tuple(sorted(counts))
                prepared = _prepared(("summary", table.name, names),
                                     lambda t=table, n=names: _summary_upsert(t, n, self.conn.dialect),
                                     self.conn.dialect)
                self._run(prepared, [{"day": day, "unit": unit or "", **area, **counts}])

    def rebuild_summary(self, chunk: int = 2000) -> int:
        """Recompute the daily and monthly summaries from the facts table (same transaction); the daily
        rows written."""
        f = FACTS.c
        self.conn.execute(sa.delete(SUMMARY))
        self.conn.execute(sa.delete(MONTHLY))
        key_cols = (f.day, f.unit, *(f[c] for c in _AREA))
        daily: dict[tuple[Any, ...], dict[str, int]] = {}
        monthly: dict[tuple[Any, ...], dict[str, int]] = {}
        for row in self.conn.execute(sa.select(*key_cols, f.kind, f.detail, f.on_time, sa.func.count())
                                     .group_by(*key_cols, f.kind, f.detail, f.on_time)):
            names = tally(row.kind, row.detail, row.on_time)
            if not names:
                continue
            rest = (row.unit or "", *(getattr(row, c) or "" for c in _AREA))
            for acc, key in ((daily, (row.day, *rest)), (monthly, (month_of(row.day), *rest))):
                counts = acc.setdefault(key, {})
                for name in names:
                    counts[name] = counts.get(name, 0) + int(row[-1])
        for table, acc in ((SUMMARY, daily), (MONTHLY, monthly)):
            names = [c.name for c in table.primary_key.columns]
            rows = [{**dict(zip(names, key)), **{c: counts.get(c, 0) for c in STORED}}
                    for key, counts in sorted(acc.items())]
            for start in range(0, len(rows), chunk):
                self.conn.execute(sa.insert(table), rows[start:start + chunk])
        return len(daily)

    # --- timers -------------------------------------------------------------------------------

    def schedule(self, case_id: int, specs: Iterable[TimerSpec], version: int) -> int:
        rows = [{"case_id": case_id, "key": t.key, "deadline_id": t.deadline_id, "kind": t.kind,
                 "due_at": t.due_at, "status": "pending", "claimed_by": None, "claim_expires_at": None,
                 "set_at_version": version} for t in specs]
        if rows:
            self._run(_prepared("timers", lambda: sa.insert(TIMERS).values(
                {TIMERS.c[c]: sa.bindparam(c) for c in _TIMER_COLUMNS}), self.conn.dialect), rows)
        return len(rows)

    def cancel(self, case_id: int, deadline_ids: Sequence[str]) -> int:
        if not deadline_ids:
            return 0
        prepared = _prepared("cancel", lambda: sa.delete(TIMERS).where(
            TIMERS.c.case_id == sa.bindparam("case_id"), TIMERS.c.deadline_id == sa.bindparam("deadline_id")),
            self.conn.dialect)
        return self._run(prepared, [{"case_id": case_id, "deadline_id": d} for d in deadline_ids])

    def pending_timers(self, case_id: int) -> list[TimerRow]:
        return list(self.session.exec(select(TimerRow).where(TimerRow.case_id == case_id)
                                      .order_by(TimerRow.due_at)))

    # --- idempotency and outbox ---------------------------------------------------------------

    def prior_result(self, key: str) -> PriorResult | None:
        prior = self.session.get(IdempotencyRow, key)
        return None if prior is None else PriorResult(prior.request_hash, prior.result or {})

    def remember(self, key: str, case: StoredCase, action: str, request_hash: str,
                 result: Mapping[str, Any], at: datetime) -> None:
        try:
            self.conn.execute(sa.insert(IDEMPOTENCY), [{"key": key, "case_id": case.id, "action": action,
                                                        "request_hash": request_hash, "result": dict(result),
                                                        "created_at": at}])
        except DuplicateKey as exc:  # the same key, remembered by a concurrent request
            raise ConcurrentWrite(_RACE, cause=exc.cause) from exc

    def subscribers(self) -> Sequence[Any]:
        return channels.list_subscribers(self.conn, active_only=True)

    def reporter_phone(self, case_id: int) -> str | None:
        return channels.case_phone(self.conn, case_id)

    def outbox(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._run(_prepared("outbox", lambda: sa.insert(OUTBOX).values(
                {OUTBOX.c[c]: sa.bindparam(c) for c in _OUTBOX_COLUMNS}), self.conn.dialect), rows)
