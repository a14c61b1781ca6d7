"""Lists of cases: filtered pages with cursors, and each caller's worklist, both within the caller's scope.

Both are read as *arms*, one query per scope term (:meth:`.scopes.Scope.arms`: a column equal to one
value), each an index range scan in the order of the page with a ``LIMIT``, merged here and deduplicated
(a case in scope by two terms is on the page once). An ``OR`` over several columns would make either
database scan and sort every case the caller may see; an arm reads about as many index entries as the
page has lines (plus those its other conditions skip).

- Lists (newest first, ``id DESC``): the ``(column, id)`` indexes of :class:`~gridflow.adapters.orm.CaseRow`
  (``ix_cases_holder``, ``ix_cases_community``, ``ix_cases_street_id``, ``ix_cases_grid``,
  ``ix_cases_reporter``; a district's list reads the primary key backwards, nearly every case lies in
  it), and ``ix_cases_co_handling (id, co_units) WHERE co_units <> ''`` for a department's 协办.
- Worklists (most urgent first, ``due_at NULLS LAST, id``): the partial indexes on open cases
  ``ix_cases_open_<column> (column, due_at, id) WHERE NOT closed``, and ``ix_cases_open_co_handling``:
  they grow with what is open, not with what was ever stored. SQLite sorts NULLs first in an ascending
  index, so each arm reads the cases with a running deadline (``due_at IS NOT NULL ORDER BY due_at, id``)
  and then, if the page is not full, the tail without one (``due_at IS NULL ORDER BY id``): both
  index-ordered on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import CaseRow
from ..engine.errors import GridflowError
from ..engine.worklists import CO_HANDLER_ROLE, STAND_INS, SUPERVISION_ROLE, worklist_rule
from .auth import Caller
from .case_view import CaseSummary, summarize
from .context import Services
from .scopes import CO_HANDLED, LIST_COLUMNS, OPEN, scope_of

MAX_PAGE = 200
#: The latest instant a worklist cursor may carry (year 9999), in microseconds since the epoch.
_MAX_MICROS = 253_402_300_799_999_999
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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


def _encode(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> str:
    """The value of a cursor of ``kind``; anything else is a request error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got, value = raw.split(":", 1)
        if got != kind:
            raise ValueError(got)
        return value
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _bad_cursor() from None


def _bad_cursor() -> RequestInvalid:
    return RequestInvalid("cursor is not one this API handed out; start again without it",
                          fields={"cursor": "invalid"})


def _case_id(value: str) -> int:
    case_id = int(value)
    if not 0 < case_id < 2**62:
        raise ValueError(case_id)
    return case_id


def encode_cursor(case_id: int) -> str:
    return _encode(f"c:{case_id}")


def decode_cursor(cursor: str) -> int:
    try:
        return _case_id(_decode(cursor, "c"))
    except ValueError:
        raise _bad_cursor() from None


#: Where a worklist page ends: the last line's ``due_at`` (None: in the tail without a deadline) and id.
WorklistKey = tuple[datetime | None, int]


def encode_worklist_cursor(key: WorklistKey) -> str:
    due, case_id = key
    micros = "" if due is None else str((due - _EPOCH) // timedelta(microseconds=1))
    return _encode(f"w:{micros}:{case_id}")


def decode_worklist_cursor(cursor: str) -> WorklistKey:
    try:
        micros, case_id = _decode(cursor, "w").split(":", 1)
        if micros == "":
            return None, _case_id(case_id)
        if not micros.lstrip("-").isdigit() or not 0 <= int(micros) <= _MAX_MICROS:
            raise ValueError(micros)
        return _EPOCH + timedelta(microseconds=int(micros)), _case_id(case_id)
    except ValueError:
        raise _bad_cursor() from None


def filtered(svc: Services, caller: Caller, f: CaseFilter, now: datetime) -> list[Any]:
    """SQL conditions for the cases in the caller's scope that pass the filter."""
    return [scope_of(svc, caller).sql(), *filter_conditions(f, now)]


def filter_conditions(f: CaseFilter, now: datetime) -> list[Any]:
    """SQL conditions for the cases that pass the filter (the caller's scope apart)."""
    conds = []
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
        late = sa.and_(OPEN, sa.or_(CaseRow.breach_count > 0, CaseRow.next_due_at <= now))
        conds.append(late if f.overdue else sa.not_(late))
    if f.reported_from is not None:
        conds.append(CaseRow.opened_at >= as_utc(f.reported_from))
    if f.reported_to is not None:
        conds.append(CaseRow.opened_at < as_utc(f.reported_to))
    return conds


def list_cases(svc: Services, caller: Caller, f: CaseFilter = CaseFilter(), cursor: str | None = None,
               limit: int = 50) -> CasePage:
    """Newest first; ``next_cursor`` continues after the last case of this page.

    One query per scope arm, ``WHERE <arm> AND <filter> [AND id < cursor] ORDER BY id DESC LIMIT n + 1``,
    each on its arm's ``(column, id)`` index (the primary key for an admin), merged newest first."""
    limit = max(1, min(limit, MAX_PAGE))
    now = svc.clock.now()
    before = decode_cursor(cursor) if cursor else None
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        svc.db.prefer_index_order(uow.connection)
        conds = filter_conditions(f, now)
        if before is not None:
            conds.append(CaseRow.id < before)

        def arm(condition: Any) -> list[tuple[int]]:
            return list(uow.session.exec(select(CaseRow.id).where(condition, *conds)
                                         .order_by(CaseRow.id.desc()).limit(limit + 1)).all())

        keys = _merged([[(-i,) for i in arm(a)] for _, a in scope_of(svc, caller).arms()], limit + 1)
        rows = _rows(uow, [-k[0] for k in keys[:limit]], CaseRow.id.desc())
    more = len(keys) > limit
    return CasePage([summarize(svc, caller, r, now) for r in rows],
                    encode_cursor(rows[-1].id) if more and rows else None)


class WorklistPage(list):
    """One page of worklist lines (:class:`CaseSummary`, a list as the worklist has always been) and
    ``next_cursor``, where the next page starts (None on the last)."""

    def __init__(self, lines: Iterable[CaseSummary], next_cursor: str | None) -> None:
        super().__init__(lines)
        self.next_cursor = next_cursor


def worklist(svc: Services, caller: Caller, limit: int = 50, cursor: str | None = None) -> WorklistPage:
    """The open cases on the caller's worklist (:mod:`gridflow.engine.worklists` says which), most urgent
    first: most overdue first, then least time left (``due_at``), then the oldest; cases without a running
    deadline last. ``next_cursor`` continues after the last line, keyed on ``(due_at NULLS LAST, id)``.

    One query pair per scope arm (:func:`_urgent_first`), each on the arm's ``ix_cases_open_<column>``
    partial index, and one for the department's open co-handling parts (``ix_cases_open_co_handling``)."""
    limit = max(1, min(limit, MAX_PAGE))
    now = svc.clock.now()
    after = decode_worklist_cursor(cursor) if cursor else None
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        svc.db.prefer_index_order(uow.connection)
        waiting = waiting_on(svc, caller)
        co = _co_handling(caller)
        # A department's co-handling arm holds every case its scope's co_units term would add.
        arms = [_urgent_first(uow, sa.and_(a, waiting), after, limit + 1)
                for col, a in scope_of(svc, caller).arms() if co is None or col not in LIST_COLUMNS]
        if co is not None:
            arms.append(_urgent_first(uow, co, after, limit + 1))
        keys = _merged(arms, limit + 1)
        rows = sorted(_rows(uow, [k[2] for k in keys[:limit]]), key=_urgency)
    more = len(keys) > limit
    last = (as_utc(rows[-1].due_at), rows[-1].id) if more and rows else None
    return WorklistPage([summarize(svc, caller, r, now) for r in rows],
                        encode_worklist_cursor(last) if last is not None else None)


def _merged(arms: Iterable[list[tuple]], limit: int) -> list[tuple]:
    """The first ``limit`` keys of several sorted lists of keys (a row's sort key ending in its id), in
    order, each once (a case in scope by two arms has the same key in both)."""
    out: list[tuple] = []
    for key in heapq.merge(*arms):
        if not out or key != out[-1]:
            out.append(key)
            if len(out) == limit:
                break
    return out


def _rows(uow, ids: list[int], *order: Any) -> list[CaseRow]:
    """The page's rows, read by primary key once the arms have chosen them (each arm reads only keys)."""
    if not ids:
        return []
    return list(uow.session.exec(select(CaseRow).where(CaseRow.id.in_(ids)).order_by(*order)))


def _urgent_first(uow, condition: Any, after: WorklistKey | None, limit: int) -> list[tuple]:
    """The sort keys ``(no deadline, due_at, id)`` of the open cases meeting ``condition`` after the
    cursor, most urgent first (``due_at NULLS LAST, id``): first those with a running deadline,
    ``due_at IS NOT NULL ORDER BY due_at, id``, then (when the page is not full) the tail without one,
    ``due_at IS NULL ORDER BY id`` — each read in the order of the ``(column, due_at, id) WHERE NOT
    closed`` index, so neither database sorts (for the co-handling arm, ``ix_cases_open_co_handling
    (due_at, id, co_units)`` answers from the index alone)."""
    keys: list[tuple] = []
    if after is None or after[0] is not None:
        conds = [OPEN, condition, CaseRow.due_at.is_not(None)]
        if after is not None:
            conds += [CaseRow.due_at >= after[0], sa.tuple_(CaseRow.due_at, CaseRow.id) > after]
        query = select(CaseRow.due_at, CaseRow.id).where(*conds).order_by(CaseRow.due_at, CaseRow.id)
        keys = [(False, as_utc(due), i) for due, i in uow.session.exec(query.limit(limit))]
    if len(keys) < limit:
        conds = [OPEN, condition, CaseRow.due_at.is_(None)]
        if after is not None and after[0] is None:
            conds.append(CaseRow.id > after[1])
        keys += [(True, _NO_DUE, i) for i in uow.session.exec(
            select(CaseRow.id).where(*conds).order_by(CaseRow.id).limit(limit - len(keys)))]
    return keys


_NO_DUE = datetime.min.replace(tzinfo=timezone.utc)


def _urgency(row: CaseRow) -> tuple[bool, Any, int]:
    due = as_utc(row.due_at)
    return (due is None, due or _NO_DUE, row.id)


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
    return sa.and_(CO_HANDLED, _like(CaseRow.co_units, caller.unit))
