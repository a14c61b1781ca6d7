"""SQL for the channels: intake sources, webhook subscribers, who to tell on a case, dead letters.

Statements on a connection the caller holds (a unit of work's), so what a change queues for its
subscribers and its resident commits with the change itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import sqlalchemy as sa

from .orm import CaseRow, IntakeSource, OutboxRow, WebhookSubscriber

_SOURCES = IntakeSource.__table__
_SUBSCRIBERS = WebhookSubscriber.__table__
_OUTBOX = OutboxRow.__table__
_CASES = CaseRow.__table__


@dataclass(frozen=True)
class Source:
    name: str
    secret: str
    workflow: str
    reporter_id: str
    role: str
    unit: str | None
    channel: str
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class Subscriber:
    id: int
    url: str
    secret: str
    event_types: tuple[str, ...]
    label: str
    active: bool
    created_at: datetime

    def wants(self, event_type: str) -> bool:
        return self.active and ("*" in self.event_types or event_type in self.event_types)


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(row.id, row.url, row.secret, tuple(row.event_types or ()), row.label, row.active,
                      row.created_at)


# --- intake sources -----------------------------------------------------------------------------

def add_source(conn: sa.Connection, source: Source) -> bool:
    """Insert ``source``; False when a source of that name exists."""
    if conn.execute(sa.select(_SOURCES.c.name).where(_SOURCES.c.name == source.name)).first():
        return False
    conn.execute(sa.insert(_SOURCES).values(**source.__dict__))
    return True


def get_source(conn: sa.Connection, name: str) -> Source | None:
    row = conn.execute(sa.select(_SOURCES).where(_SOURCES.c.name == name)).first()
    return None if row is None else Source(**row._mapping)


def list_sources(conn: sa.Connection) -> list[Source]:
    return [Source(**r._mapping) for r in conn.execute(sa.select(_SOURCES).order_by(_SOURCES.c.name))]


# --- webhook subscribers ------------------------------------------------------------------------

def add_subscriber(conn: sa.Connection, url: str, secret: str, event_types: Sequence[str], label: str,
                   at: datetime) -> Subscriber:
    new_id = conn.execute(sa.insert(_SUBSCRIBERS).values(
        url=url, secret=secret, event_types=list(event_types), label=label, active=True, created_at=at)
        .returning(_SUBSCRIBERS.c.id)).scalar_one()
    return Subscriber(new_id, url, secret, tuple(event_types), label, True, at)


def list_subscribers(conn: sa.Connection, *, active_only: bool = False) -> list[Subscriber]:
    stmt = sa.select(_SUBSCRIBERS).order_by(_SUBSCRIBERS.c.id)
    if active_only:
        stmt = stmt.where(_SUBSCRIBERS.c.active.is_(True))
    return [_subscriber(r) for r in conn.execute(stmt)]


def get_subscriber(conn: sa.Connection, subscriber_id: int) -> Subscriber | None:
    row = conn.execute(sa.select(_SUBSCRIBERS).where(_SUBSCRIBERS.c.id == subscriber_id)).first()
    return None if row is None else _subscriber(row)


def subscriber_lookup(db: Any):
    """``id -> Subscriber | None`` on ``db``'s own connections (for the notifier sending webhooks)."""
    def lookup(subscriber_id: int) -> Subscriber | None:
        with db.connect() as conn:
            return get_subscriber(conn, subscriber_id)
    return lookup


def deactivate_subscriber(conn: sa.Connection, subscriber_id: int) -> bool:
    done = conn.execute(sa.update(_SUBSCRIBERS).where(_SUBSCRIBERS.c.id == subscriber_id)
                        .values(active=False))
    return done.rowcount > 0


# --- who is told, and the dead letters ------------------------------------------------------------

def case_phone(conn: sa.Connection, case_id: int) -> str | None:
    """The phone the case was reported with (the resident's, or the one a staff member took down)."""
    return conn.execute(sa.select(_CASES.c.reporter_phone).where(_CASES.c.id == case_id)).scalar()


def dead_letters(conn: sa.Connection, *, kind_prefix: str | None = None, limit: int = 100) -> list[Any]:
    """Outbox rows given up on (status ``dead``), newest first."""
    stmt = (sa.select(_OUTBOX.c.id, _OUTBOX.c.case_id, _OUTBOX.c.kind, _OUTBOX.c.payload, _OUTBOX.c.attempts,
                      _OUTBOX.c.created_at, _OUTBOX.c.next_attempt_at, _OUTBOX.c.last_error)
            .where(_OUTBOX.c.status == "dead").order_by(_OUTBOX.c.id.desc()).limit(limit))
    if kind_prefix:
        stmt = stmt.where(_OUTBOX.c.kind.startswith(kind_prefix, autoescape=True))
    return list(conn.execute(stmt))


def retry_dead_letter(conn: sa.Connection, outbox_id: int, now: datetime) -> bool:
    """Queue a dead row again with fresh attempts; False when no dead row has that id."""
    done = conn.execute(sa.update(_OUTBOX).where(_OUTBOX.c.id == outbox_id, _OUTBOX.c.status == "dead")
                        .values(status="pending", attempts=0, next_attempt_at=now))
    return done.rowcount > 0
