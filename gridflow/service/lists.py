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
from ..engine.worklists import CO_HANDLER_ROLE, STAND_INS, SUPERVISION_ROLE, worklist_rule
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
    """The open cases on the caller's worklist (:mod:`gridflow.engine.worklists` says which), most urgent
    first: most overdue first, then least time left (``due_at``), then the oldest; cases without a running
    deadline last."""
    limit = max(1, min(limit, MAX_PAGE))
    now = svc.clock.now()
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        rows = _urgent_first(uow, sa.and_(scope_of(svc, caller).sql(), waiting_on(svc, caller)), limit)
        co = _co_handling(caller)
        if co is not None:  # a query of its own, so the first keeps to its index order
            seen = {r.id for r in rows}
            extra = [r for r in _urgent_first(uow, co, limit) if r.id not in seen]
            rows = sorted(rows + extra, key=_urgency)[:limit]
    return [summarize(svc, caller, r, now) for r in rows]


def _urgent_first(uow, condition: Any, limit: int) -> list[CaseRow]:
    """Open cases meeting ``condition``, most urgent first: ``due_at ASC NULLS LAST, id`` (the order of
    the ``(holder_unit | escalation_unit, closed, due_at)`` indexes, so the database need not sort)."""
    return list(uow.session.exec(
        select(CaseRow).where(CaseRow.closed == False, condition)  # noqa: E712
        .order_by(CaseRow.due_at.asc().nulls_last(), CaseRow.id).limit(limit)))


def _urgency(row: CaseRow) -> tuple[bool, Any, int]:
    due = as_utc(row.due_at)
    return (due is None, due or datetime.min.replace(tzinfo=timezone.utc), row.id)


def _like(column: Any, value: str) -> Any:
    return column.contains(f",{value},", autoescape=True)


def waiting_on(svc: Services, caller: Caller) -> Any:
    """SQL for :func:`gridflow.engine.worklists.on_worklist`, for the caller's role at the caller's unit
    (the caller's scope is added by the query)."""
    role, unit = caller.role, caller.unit
    arms = [_like(CaseRow.holder_roles, role)]
    kind = _kind(svc, unit)
    if unit is not None and kind in STAND_INS and STAND_INS[kind] == role:
        arms.extend(_stand_in_arms(kind, unit))
    levels = _escalation_arm(svc, role)
    if unit is not None and levels is not None:
        arms.append(sa.and_(CaseRow.escalation_unit == unit, levels))
    if role == SUPERVISION_ROLE:
        arms.append(CaseRow.supervised == True)  # noqa: E712
    return sa.or_(*arms)


def _kind(svc: Services, unit: str | None) -> str | None:
    info = svc.units.get(unit)
    return info.kind if info is not None else None


def _lowest_area_is(kind: str, unit: str) -> Any:
    """The case lies in ``unit`` (of ``kind``) and in no area below it."""
    if kind == "community":
        return CaseRow.community_code == unit
    if kind == "street":
        return sa.and_(CaseRow.community_code.is_(None), CaseRow.street_code == unit)
    return sa.and_(CaseRow.community_code.is_(None), CaseRow.street_code.is_(None),
                   CaseRow.district_code == unit)


def _stand_in_arms(kind: str, unit: str) -> list[Any]:
    """A dispatcher works what the case's place lacks a role for
    (:class:`~gridflow.engine.worklists.CasePlace`)."""
    arms = [sa.and_(_like(CaseRow.holder_roles, "department_handler"), CaseRow.holder_unit == unit)]
    if kind in ("street", "district"):
        arms.append(sa.and_(_like(CaseRow.holder_roles, "community_dispatcher"), _lowest_area_is(kind, unit)))
        arms.append(sa.and_(_like(CaseRow.holder_roles, "grid_worker"), _lowest_area_is(kind, unit)))
    else:  # a community's own case (filed at the community, in no grid)
        arms.append(sa.and_(_like(CaseRow.holder_roles, "grid_worker"), CaseRow.community_code == unit,
                            CaseRow.origin_unit == unit))
    return arms


def _escalation_arm(svc: Services, role: str) -> Any | None:
    """Cases escalated to a level the role works (per workflow version), or None if it works none."""
    by_levels: dict[frozenset[int], list[Any]] = {}
    for defn in svc.catalog.all():
        levels = worklist_rule(defn, role).escalation_levels
        if levels:
            by_levels.setdefault(levels, []).append(
                sa.and_(CaseRow.workflow == defn.name, CaseRow.workflow_version == defn.version))
    if not by_levels:
        return None
    return sa.or_(*(sa.and_(CaseRow.escalation_level.in_(sorted(levels)), sa.or_(*versions))
                    for levels, versions in by_levels.items()))


def _co_handling(caller: Caller) -> Any | None:
    """A department's open co-handling parts (协办) are on its worklist."""
    if caller.role != CO_HANDLER_ROLE or not caller.unit:
        return None
    return _like(CaseRow.co_units, caller.unit)
