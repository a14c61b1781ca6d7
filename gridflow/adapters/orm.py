"""Storage tables (SQLModel ``table=True``): the persisted shape, kept apart from engine and API shapes.

Timestamps are stored as timezone-aware UTC (``timestamptz`` on PostgreSQL;
naive-UTC text on SQLite, re-tagged as UTC when read).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

UTC = timezone.utc


class UTCDateTime(TypeDecorator):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(**kw: Any):
    return Field(sa_column=sa.Column(UTCDateTime(), **kw))


def _json(**kw: Any):
    return Field(default=None, sa_column=sa.Column(sa.JSON(), **kw))


class Unit(SQLModel, table=True):
    __tablename__ = "units"
    code: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    #: city, district, street, community, grid or department
    kind: str = Field(max_length=20, index=True)
    parent_code: Optional[str] = Field(default=None, foreign_key="units.code", index=True, max_length=64)
    #: Grid boundary as WKT (polygon), for locating reports.
    boundary_wkt: Optional[str] = Field(default=None, sa_column=sa.Column(sa.Text()))
    #: Gone from the organisation file (撤销): kept, because cases and users still name it, but no
    #: report is located in it and no picker offers it.
    retired: bool = Field(default=False, sa_column=sa.Column(sa.Boolean(), nullable=False,
                                                             server_default=sa.false()))


class OrgChange(SQLModel, table=True):
    """One load of the organisation files that changed something: who, when, from which files, and the
    diff (units added, renamed, moved, reshaped, retired, restored; addresses added and dropped)."""

    __tablename__ = "org_changes"
    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = _ts(nullable=False)
    actor: str = Field(max_length=64)
    source: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False, server_default=""))
    diff: Any = _json(nullable=False)


class OrgAddress(SQLModel, table=True):
    """The address table (门牌地址 → 网格) that locates a report given by address text only."""

    __tablename__ = "org_addresses"
    address: str = Field(primary_key=True, max_length=300)
    unit_code: str = Field(foreign_key="units.code", index=True, max_length=64)


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    role: str = Field(max_length=32)
    unit_code: Optional[str] = Field(default=None, foreign_key="units.code", index=True, max_length=64)
    phone: Optional[str] = Field(default=None, max_length=32)
    active: bool = True
    #: argon2 hash of the console password (None: this user signs in with an API key only).
    password_hash: Optional[str] = Field(default=None, max_length=255)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=64)
    key_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    label: str = Field(default="", max_length=100)
    created_at: datetime = _ts(nullable=False)
    revoked_at: Optional[datetime] = _ts(nullable=True)
    #: After this instant the key authenticates as nothing (no expiry when unset).
    expires_at: Optional[datetime] = _ts(nullable=True)


class ConsoleSession(SQLModel, table=True):
    """A signed-in console browser: the cookie holds the session id, the table only its hash."""

    __tablename__ = "console_sessions"
    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=64)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _ts(nullable=False)
    last_seen_at: datetime = _ts(nullable=False)
    #: The absolute end of the session, however busy it is.
    expires_at: datetime = _ts(nullable=False)
    revoked_at: Optional[datetime] = _ts(nullable=True)


class WorkflowVersion(SQLModel, table=True):
    __tablename__ = "workflow_versions"
    __table_args__ = (sa.UniqueConstraint("name", "version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    version: int
    content_hash: str = Field(max_length=64)
    #: The definition as it was (YAML text), so old cases keep their rules.
    source_text: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    registered_at: datetime = _ts(nullable=False)


#: The predicate of the partial indexes on open cases, as each database writes it (SQLite matches a
#: query's ``closed = 0`` term for term; PostgreSQL proves ``closed = false`` implies ``NOT closed``).
OPEN_WHERE = {"sqlite_where": sa.text("closed = 0"), "postgresql_where": sa.text("NOT closed")}
#: Cases with an open co-handling part (协办): few at any time.
CO_HANDLED_WHERE = {"sqlite_where": sa.text("co_units <> ''"), "postgresql_where": sa.text("co_units <> ''")}
OPEN_CO_HANDLED_WHERE = {"sqlite_where": sa.text("closed = 0 AND co_units <> ''"),
                         "postgresql_where": sa.text("NOT closed AND co_units <> ''")}
#: The case columns a scope term anchors on (gridflow.service.scopes) and the index names' suffix.
SCOPE_ANCHORS = {"holder_unit": "holder", "community_code": "community", "street_code": "street",
                 "district_code": "district", "origin_unit": "grid", "reporter_id": "reporter"}
#: Case lists, newest first, one index range per scope term: ``(column, id)`` over every case stored
#: (a district's list reads the primary key backwards: nearly every case lies in it).
LIST_INDEXES = tuple(sa.Index(f"ix_cases_{name}" if name != "street" else "ix_cases_street_id", col, "id")
                     for col, name in SCOPE_ANCHORS.items() if col != "district_code")
#: Worklists, most urgent first, over open cases only: ``(column, due_at, id) WHERE NOT closed``.
OPEN_INDEXES = tuple(sa.Index(f"ix_cases_open_{name}", col, "due_at", "id", **OPEN_WHERE)
                     for col, name in SCOPE_ANCHORS.items())


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        sa.Index("ix_cases_scope", "community_code", "opened_at"),
        sa.Index("ix_cases_street", "street_code", "opened_at"),
        *LIST_INDEXES,
        *OPEN_INDEXES,
        sa.Index("ix_cases_co_handling", "id", "co_units", **CO_HANDLED_WHERE),
        sa.Index("ix_cases_open_co_handling", "due_at", "id", "co_units", **OPEN_CO_HANDLED_WHERE),
        # possible duplicates of a new report: open cases of its category, recent first; of its caller
        sa.Index("ix_cases_open_category", "category", "opened_at", **OPEN_WHERE),
        sa.Index("ix_cases_open_phone", "reporter_phone", "opened_at", **OPEN_WHERE),
        {"sqlite_autoincrement": True},
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    number: Optional[str] = Field(default=None, max_length=32, sa_column_kwargs={"unique": True})
    workflow: str = Field(max_length=64)
    workflow_version: int
    state: str = Field(max_length=64, index=True)
    stage: str = Field(default="", max_length=32)
    escalation_level: int = 0
    supervised: bool = False
    closed: bool = False
    outcome: Optional[str] = Field(default=None, max_length=32)
    holder_unit: Optional[str] = Field(default=None, max_length=64)
    holder_roles: str = Field(default="", max_length=200)
    escalation_unit: Optional[str] = Field(default=None, max_length=64)
    origin_unit: Optional[str] = Field(default=None, max_length=64)
    community_code: Optional[str] = Field(default=None, max_length=64)
    street_code: Optional[str] = Field(default=None, max_length=64)
    district_code: Optional[str] = Field(default=None, max_length=64)
    category: str = Field(default="", max_length=64, index=True)
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False, server_default=""))
    channel: str = Field(default="api", max_length=32)
    lat: Optional[float] = None
    lon: Optional[float] = None
    address: Optional[str] = Field(default=None, max_length=300)
    reporter_id: Optional[str] = Field(default=None, max_length=64)
    reporter_name: Optional[str] = Field(default=None, max_length=100)
    reporter_phone: Optional[str] = Field(default=None, max_length=32)
    resident_token_hash: Optional[str] = Field(default=None, max_length=64, index=True)
    attachments: Optional[list] = _json()
    #: Engine-owned SLA state: deadlines, case data, pause bookkeeping (see adapters.codec).
    sla: Optional[dict] = _json()
    breach_count: int = 0
    warned: bool = False
    next_due_at: Optional[datetime] = _ts(nullable=True)
    #: The earliest due instant of the case's running deadlines (in the past when overdue): worklists
    #: put the most overdue first, then the least time left.
    due_at: Optional[datetime] = _ts(nullable=True)
    #: In a state that pauses the SLA clock (挂起): shown apart on worklists and lights.
    suspended: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    #: The units with an open co-handling part (协办), comma-wrapped (",u1,u2,"), "" for none.
    co_units: str = Field(default="", max_length=400, sa_column_kwargs={"server_default": ""})
    opened_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    closed_at: Optional[datetime] = _ts(nullable=True)
    first_response_at: Optional[datetime] = _ts(nullable=True)
    rating: Optional[str] = Field(default=None, max_length=32)
    #: Optimistic concurrency: every change bumps it; a stale writer matches no row.
    version: int = 0
    event_seq: int = 0
    last_hash: str = Field(default="0" * 64, max_length=64)


class EventRow(SQLModel, table=True):
    """History: append-only, hash-chained per case."""

    __tablename__ = "case_events"
    __table_args__ = (sa.UniqueConstraint("case_id", "seq", name="uq_case_events_case_seq"),
                      sa.Index("ix_case_events_at", "at"), {"sqlite_autoincrement": True})
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    seq: int
    type: str = Field(max_length=40)
    actor: str = Field(max_length=64)
    role: str = Field(max_length=32)
    data: Optional[dict] = _json()
    at: datetime = _ts(nullable=False)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class TimerRow(SQLModel, table=True):
    """A durable pending firing. A timer exists because its row exists."""

    __tablename__ = "timers"
    __table_args__ = (sa.UniqueConstraint("case_id", "key", name="uq_timers_case_key"),
                      sa.Index("ix_timers_due", "status", "due_at"),
                      sa.Index("ix_timers_case_deadline", "case_id", "deadline_id"),
                      # Ids are never reused: a late task for a fired timer must not hit a new one.
                      {"sqlite_autoincrement": True})
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    key: str = Field(max_length=120)
    deadline_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    due_at: datetime = _ts(nullable=False)
    #: pending, or claimed (by a runner, until claim_expires_at)
    status: str = Field(default="pending", max_length=16)
    claimed_by: Optional[str] = Field(default=None, max_length=100)
    claim_expires_at: Optional[datetime] = _ts(nullable=True)
    set_at_version: int = 0


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    key: str = Field(primary_key=True, max_length=200)
    case_id: int = Field(foreign_key="cases.id", index=True)
    action: str = Field(max_length=64)
    request_hash: str = Field(max_length=64)
    result: Optional[dict] = _json()
    created_at: datetime = _ts(nullable=False)


class OutboxRow(SQLModel, table=True):
    """Side effects (notifications, webhooks) written in the same transaction as the change."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_pending", "status", "next_attempt_at"),
                      {"sqlite_autoincrement": True})
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: Optional[int] = Field(default=None, index=True)
    kind: str = Field(max_length=32)
    payload: Optional[dict] = _json()
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _ts(nullable=False)
    created_at: datetime = _ts(nullable=False)
    last_error: Optional[str] = Field(default=None, sa_column=sa.Column(sa.Text()))


class RuntimeState(SQLModel, table=True):
    """Small facts a restart must not forget, e.g. the scaled demo clock's epoch (key → JSON text)."""

    __tablename__ = "runtime_state"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    updated_at: datetime = _ts(nullable=False)


class FactRow(SQLModel, table=True):
    """Per-unit statistical facts (三率 and counters), derived from the history written with them.

    Additive by design: every figure is a COUNT of rows per unit, kind and day (see docs/three-rates.md
    and ``engine.facts``); ``gridflow stats rebuild`` recomputes the table from history.
    """

    __tablename__ = "case_facts"
    __table_args__ = (sa.Index("ix_case_facts_unit_kind_day", "unit", "kind", "day"),
                      sa.Index("ix_case_facts_day", "day"), sa.Index("ix_case_facts_case", "case_id", "seq"),
                      {"sqlite_autoincrement": True})
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    #: the history entry (case_events.seq) the fact comes from
    seq: int
    workflow: str = Field(max_length=64)
    unit: Optional[str] = Field(default=None, max_length=64)
    kind: str = Field(max_length=32)
    #: the local day (Asia/Shanghai) of ``at``, the instant that places the fact in a period
    day: date = Field(sa_column=sa.Column(sa.Date(), nullable=False))
    at: datetime = _ts(nullable=False)
    occurred_at: datetime = _ts(nullable=False)
    role: Optional[str] = Field(default=None, max_length=16)
    on_time: Optional[bool] = None
    detail: Optional[str] = Field(default=None, max_length=64)
    ref: Optional[int] = None
    due_at: Optional[datetime] = _ts(nullable=True)
    peer: Optional[str] = Field(default=None, max_length=64)
    #: where the case is (its area codes, fixed at filing): summary tables keep figures per area with them
    community_code: Optional[str] = Field(default=None, max_length=64)
    street_code: Optional[str] = Field(default=None, max_length=64)
    district_code: Optional[str] = Field(default=None, max_length=64)
    #: the case's origin unit (its grid, for a grid worker's report), fixed at filing
    grid_code: Optional[str] = Field(default=None, max_length=64)


def _counter_columns() -> list[sa.Column]:
    from ..engine.tallies import STORED
    return [sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in STORED]


def _summary_table(name: str, period: str) -> sa.Table:
    """A summary table: one row per ``period`` (a local day, or a calendar month's first day), unit and
    area of the case (district, street, community and grid codes, "" for none), one column per counter
    of :data:`gridflow.engine.tallies.STORED`. A Core table: rows are only ever upserted and summed."""
    area = {"district_code": "district", "street_code": "street", "community_code": "community",
            "grid_code": "grid"}
    return sa.Table(
        name, SQLModel.metadata,
        sa.Column(period, sa.Date(), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        *(sa.Column(col, sa.String(64), nullable=False) for col in area),
        *_counter_columns(),
        sa.PrimaryKeyConstraint(period, "unit", *area, name=f"pk_{name}"),
        sa.Index(f"ix_{name}_unit", "unit", period),
        *(sa.Index(f"ix_{name}_{short}", col, period) for col, short in area.items()),
    )


#: Figures per local day, unit and area, added to in the transaction that writes the facts, so that a
#: period's figures are a sum over a few rows per unit and day. ``gridflow stats rebuild`` recomputes it.
UNIT_DAY_STATS = _summary_table("unit_day_stats", "day")
#: The same figures per calendar month (``month`` is its first day), kept with the daily rows: a year of
#: whole months is read from twelve rows per unit and area, the days at a period's edges from the daily.
UNIT_MONTH_STATS = _summary_table("unit_month_stats", "month")


class CarePerson(SQLModel, table=True):
    """The care register (特殊群体台账): one row per person under care, keyed by the register's own id;
    each person has one long-running ``special_care_visit`` case (``case_number``), opened through intake.

    Personal data (name, ID number, phone, address) is masked outside the person's grid and community
    (``service.care``, ``service.masking``)."""

    __tablename__ = "care_people"
    __table_args__ = (sa.Index("ix_care_people_grid", "grid_code"),)
    register_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    id_number: Optional[str] = Field(default=None, max_length=32)
    phone: Optional[str] = Field(default=None, max_length=32)
    address: Optional[str] = Field(default=None, max_length=300)
    #: 独居, 空巢, 失能, 计生特殊家庭, 特殊困难残疾人, 困境儿童… (service.care.GROUP_TYPES)
    group_type: str = Field(max_length=32)
    grid_code: str = Field(max_length=64)
    #: the grid worker assigned to visit (a user id), when named
    worker_id: Optional[str] = Field(default=None, max_length=64)
    frequency: str = Field(default="monthly", max_length=16)
    case_number: Optional[str] = Field(default=None, max_length=32, index=True)
    registered_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
class IntakeSource(SQLModel, table=True):
    """A system allowed to post cases to ``POST /api/v1/intake/{name}``, signed with its own secret.

    The secret is kept as given (an HMAC needs it), returned once when the source is created and never
    again, and never logged. Cases it posts are reported as ``reporter_id`` in ``role`` (from ``unit``),
    on ``workflow`` unless the body names one, with ``channel`` on the case."""

    __tablename__ = "intake_sources"
    name: str = Field(primary_key=True, max_length=64)
    secret: str = Field(max_length=200)
    workflow: str = Field(max_length=64)
    reporter_id: str = Field(max_length=64)
    role: str = Field(max_length=32)
    unit: Optional[str] = Field(default=None, max_length=64)
    channel: str = Field(max_length=32)
    active: bool = True
    created_at: datetime = _ts(nullable=False)


class WebhookSubscriber(SQLModel, table=True):
    """A receiver of case events (outgoing webhooks): its URL, its secret, the event types it chose."""

    __tablename__ = "webhook_subscribers"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Optional[int] = Field(default=None, primary_key=True)
    url: str = Field(max_length=500)
    secret: str = Field(max_length=200)
    #: History event types (``CaseReported``, ``ActionTaken``, ``CaseClosed``…) or ``*`` for all.
    event_types: Optional[list] = _json()
    label: str = Field(default="", max_length=100)
    active: bool = True
    created_at: datetime = _ts(nullable=False)
