"""Lists of cases: filtered pages with cursors, and each caller's worklist, both within the caller's scope."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import CaseRow
from ..engine.errors import GridflowError
from .auth import Caller
from .case_view import CaseSummary, summarize
from .context import Services
from .scopes import scope_of

MAX_PAGE = 200


class RequestInvalid(GridflowError):
    code = "request_invalid"
    status = 422


@dataclass(frozen=True)
class CasePage:
    data: list[CaseSummary]
    next_cursor: str | None


@dataclass(frozen=True)
class CaseFilter:
    state: str | None = None
    stage: str | None = None
    unit: str | None = None
    category: str | None = None
    workflow: str | None = None
    escalation_level: int | None = None
    overdue: bool | None = None
    warned: bool | None = None
    supervised: bool | None = None
    closed: bool | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None


def as_utc(at: datetime | None) -> datetime | None:
    """A timestamp in UTC; a naive one (as SQLite returns it) is taken to be UTC already."""
    if at is None:
        return None
    try:
        return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise RequestInvalid(f"date-time {at!r} is out of range") from None


def encode_cursor(case_id: int) -> str:
    return base64.urlsafe_b64encode(f"c:{case_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "c":
            raise ValueError(kind)
        case_id = int(value)
        if not 0 < case_id < 2**62:
            raise ValueError(case_id)
        return case_id
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise RequestInvalid("cursor is not one this API handed out; start again without it",
                             fields={"cursor": "invalid"}) from None


def filtered(svc: Services, caller: Caller, f: CaseFilter, now: datetime) -> list[Any]:
    """SQL conditions for the cases in the caller's scope that pass the filter."""
    conds = [scope_of(svc, caller).sql()]
    for col in ("state", "stage", "category", "workflow", "escalation_level", "warned", "supervised",
                "closed"):
        value = getattr(f, col)
        if value is not None:
            conds.append(getattr(CaseRow, col) == value)
    if f.unit is not None:
        conds.append(sa.or_(*(getattr(CaseRow, c) == f.unit for c in (
            "holder_unit", "origin_unit", "community_code", "street_code", "district_code",
            "escalation_unit"))))
    if f.overdue is not None:
        late = sa.and_(CaseRow.closed == False, sa.or_(CaseRow.breach_count > 0,  # noqa: E712
                                                       CaseRow.next_due_at <= now))
        conds.append(late if f.overdue else sa.not_(late))
    if f.reported_from is not None:
        conds.append(CaseRow.opened_at >= as_utc(f.reported_from))
    if f.reported_to is not None:
        conds.append(CaseRow.opened_at < as_utc(f.reported_to))
    return conds


def list_cases(svc: Services, caller: Caller, f: CaseFilter = CaseFilter(), cursor: str | None = None,
               limit: int = 50) -> CasePage:
    """Newest first; ``next_cursor`` continues after the last case of this page."""
    limit = max(1, min(limit, MAX_PAGE))
    now = svc.clock.now()
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        conds = filtered(svc, caller, f, now)
        if cursor:
            conds.append(CaseRow.id < decode_cursor(cursor))
        rows = list(uow.session.exec(select(CaseRow).where(*conds)
                                     .order_by(CaseRow.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return CasePage([summarize(svc, caller, r, now) for r in rows],
                    encode_cursor(rows[-1].id) if more and rows else None)


def worklist(svc: Services, caller: Caller, limit: int = 50) -> list[CaseSummary]:
    """The open cases waiting on the caller's unit and role, the most urgent deadline first."""
    limit = max(1, min(limit, MAX_PAGE))
    now = svc.clock.now()
    waiting = CaseRow.holder_roles.contains(f",{caller.role},", autoescape=True)
    if caller.role in ("street_dispatcher", "district_dispatcher") and caller.unit:
        waiting = sa.or_(waiting, CaseRow.escalation_unit == caller.unit)
    elif caller.role == "supervisor":
        waiting = sa.or_(waiting, CaseRow.supervised == True,  # noqa: E712
                         CaseRow.escalation_unit == caller.unit if caller.unit else sa.false())
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        rows = list(uow.session.exec(
            select(CaseRow).where(scope_of(svc, caller).sql(), CaseRow.closed == False, waiting)  # noqa: E712
            .order_by(CaseRow.next_due_at.is_(None), CaseRow.next_due_at, CaseRow.id).limit(limit)))
    return [summarize(svc, caller, r, now) for r in rows]
