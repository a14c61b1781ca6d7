"""Which cases a caller may see: one scope rule per caller serves every read.

The rule is turned into a SQL condition for lists, worklists and statistics,
and checked in Python against the facts of a live change for event streams,
so the two can never disagree.

- admin: every case; a supervisor, dispatcher or hotline operator: the cases
  located in its unit's area (city, district, street, community or grid);
- department handler: the cases its unit holds right now, and those where it has an open co-handling
  part (协办: the ``co_units`` column, ",u1,u2,", matched as a list);
- grid worker: its grid's cases and the ones it reported;
- resident: the cases it reported — with the token it got when reporting, only that case.

Which units a caller may name in an action (:func:`may_name_unit`) follows the same areas: units within
its own, and the departments of its district.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import CaseRow
from ..engine.errors import CaseNotFound
from .auth import Caller
from .context import Services

#: Which case column places a case in the area of a unit of each kind.
AREA_COLUMN = {"district": "district_code", "street": "street_code", "community": "community_code",
               "grid": "origin_unit", "department": "holder_unit"}
#: Columns holding a comma-wrapped list of codes (",u1,u2,"): a term matches when one of its values is listed.
LIST_COLUMNS = frozenset({"co_units"})
#: Open cases, written as the partial indexes' predicate is, so both databases see that they apply
#: (SQLite only uses a partial index when the query's WHERE contains its condition term for term).
OPEN = CaseRow.closed == False  # noqa: E712  (renders ``closed = 0`` / ``closed = false``, not a parameter)
#: Cases with an open co-handling part: the predicate of ``ix_cases_co_handling``, as a literal.
CO_HANDLED = sa.text("cases.co_units <> ''")


@dataclass(frozen=True)
class Scope:
    """A case is in scope when any term matches: ``column`` holds one of ``values`` (for a list column,
    lists one of them)."""

    everything: bool = False
    terms: tuple[tuple[str, frozenset[str]], ...] = ()

    def sql(self) -> Any:
        if self.everything:
            return sa.true()
        conds = [_list_term(col, values) if col in LIST_COLUMNS else
                 getattr(CaseRow, col) == next(iter(values)) if len(values) == 1 else
                 getattr(CaseRow, col).in_(sorted(values)) for col, values in self.terms if values]
        return sa.or_(*conds) if conds else sa.false()

    def arms(self) -> list[tuple[str | None, Any]]:
        """The scope as (column, SQL condition) pairs whose conditions' ``OR`` is :meth:`sql`: one per
        column and value, so that each can be read as an index range (see :mod:`.lists`); none when
        nothing is in scope, one ``(None, true)`` when everything is."""
        if self.everything:
            return [(None, sa.true())]
        return [(col, sa.and_(CO_HANDLED, _list_term(col, frozenset({v}))) if col in LIST_COLUMNS else
                 getattr(CaseRow, col) == v) for col, values in self.terms for v in sorted(values)]

    def contains(self, facts: Mapping[str, Any], fetch: Callable[[str], Any] | None = None) -> bool:
        """Check a case's facts; ``fetch(column)`` supplies a column the facts lack (a live change's grid)."""
        if self.everything:
            return True
        for col, values in self.terms:
            if col in facts:
                value = facts[col]
            elif fetch is not None:
                value = fetch(col)
            else:
                continue
            if value is None:
                continue
            if col in LIST_COLUMNS:
                if any(f",{v}," in value for v in values):
                    return True
            elif value in values:
                return True
        return False


def _list_term(col: str, values: frozenset[str]) -> Any:
    column = getattr(CaseRow, col)
    return sa.or_(*[column.like(f"%,{_escape_like(v)},%", escape="\\") for v in sorted(values)])


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _area(svc: Services, unit_code: str | None) -> tuple[tuple[str, frozenset[str]], ...]:
    unit = svc.units.get(unit_code)
    if unit is None:
        return ()
    if unit.kind == "city":
        districts = frozenset(u.code for u in svc.units.all()
                              if u.kind == "district" and svc.units.is_within(u.code, unit.code))
        return (("district_code", districts),)
    col = AREA_COLUMN.get(unit.kind)
    return ((col, frozenset({unit.code})),) if col else ()


def area_terms(svc: Services, unit_code: str | None) -> tuple[tuple[str, frozenset[str]], ...]:
    """The (case column, codes) terms placing a case in a unit's area (none for an unknown unit)."""
    return _area(svc, unit_code)


def scope_of(svc: Services, caller: Caller) -> Scope:
    if caller.case_number is not None:
        return Scope(terms=(("number", frozenset({caller.case_number})),))
    if caller.role == "admin":
        return Scope(everything=True)
    own = (("reporter_id", frozenset({caller.id})),)
    if caller.role == "resident":
        return Scope(terms=own)
    if caller.role == "department_handler":
        unit = frozenset({caller.unit})
        return Scope(terms=(("holder_unit", unit), ("co_units", unit)) if caller.unit else ())
    if caller.unit is not None and svc.units.get(caller.unit) is None:  # a unit created since the last load
        with svc.uow(write=False) as uow:
            svc.units.refresh(uow.session, force=True)
    # A unit sees the cases it holds, wherever they lie (a street a hotline request was dispatched to).
    held = (("holder_unit", frozenset({caller.unit})),) if caller.unit else ()
    return Scope(terms=_area(svc, caller.unit) + held + own)


def may_name_unit(svc: Services, caller: Caller, code: str) -> bool:
    """Whether a caller may name a unit in an action (dispatch to it, refer to it, suggest it).

    A unit within the caller's own area, or a department hanging off the caller's area or any unit above
    it (departments are district-level units: a community or street dispatcher reaches its district's
    departments, never another street's community). A department's own area is the unit it hangs off.
    An admin may name any unit.
    """
    if caller.role == "admin":
        return True
    unit, own = svc.units.get(code), svc.units.get(caller.unit)
    if unit is None or own is None:
        return False
    area = svc.units.get(own.parent) if own.kind == "department" else own
    if area is None:
        return unit.code == own.code
    if svc.units.is_within(unit.code, area.code):
        return True
    return (unit.kind == "department" and unit.parent is not None
            and svc.units.is_within(area.code, unit.parent))


def visible_row(svc: Services, uow, caller: Caller, number: str) -> CaseRow:
    """The case row, if the caller may see it; otherwise the case does not exist for them (404)."""
    svc.units.refresh(uow.session)
    row = uow.session.exec(select(CaseRow)
                           .where(CaseRow.number == number, scope_of(svc, caller).sql())).first()
    if row is None:
        raise CaseNotFound(f"no case {number!r}", number=number)
    return row


# --- cases as last seen -------------------------------------------------------------------------

#: The case columns a scope rule can test.
FACT_COLUMNS = ("number", "holder_unit", "community_code", "street_code", "district_code", "reporter_id",
                "origin_unit", "co_units")


@dataclass(frozen=True)
class Seen:
    """A case as last seen: its version, its workflow version and the facts its scope depends on."""

    version: int
    workflow: str
    workflow_version: int
    facts: Mapping[str, Any]


class SeenCases:
    """The scope facts of recently seen cases, by version, so an action needs no extra read to check scope.

    Safe because every change to a case bumps its version and
    :func:`~gridflow.service.actions.act_as` pins the action to the version it
    checked: a stale entry can only end in a version conflict (then the case is
    read again), never in an action outside the scope. Kept current by
    :meth:`on_change` (a :class:`Services` listener) in this process.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._entries: dict[str, Seen] = {}
        self._lock = threading.Lock()

    def get(self, number: str) -> Seen | None:
        return self._entries.get(number)

    def remember(self, number: str, seen: Seen) -> None:
        with self._lock:
            if len(self._entries) >= self.size and number not in self._entries:
                self._entries.pop(next(iter(self._entries)))  # the oldest entry
            self._entries[number] = seen

    def forget(self, number: str) -> None:
        with self._lock:
            self._entries.pop(number, None)

    def on_change(self, change: Any) -> None:
        old = self._entries.get(change.number)
        if old is None or change.source == "migration":
            self.forget(change.number)
            return
        self.remember(change.number, Seen(change.version, old.workflow, old.workflow_version,
                                          {**old.facts, **change_facts(change)}))


# --- live changes -------------------------------------------------------------------------------

#: What a live change tells about its case, for scope checks without a database read.
CHANGE_FACTS = ("number", "holder_unit", "community_code", "street_code", "district_code", "reporter_id")


def change_facts(change: Any) -> dict[str, Any]:
    return {k: getattr(change, k) for k in CHANGE_FACTS}


def needs_lookup(scope: Scope) -> bool:
    """True when checking a live change against this scope may need a database read (e.g. a grid's cases)."""
    return any(col not in CHANGE_FACTS for col, _ in scope.terms)


def sees_change(svc: Services, scope: Scope, change: Any) -> bool:
    """Whether a live change (:class:`~gridflow.service.context.Change`) is in scope."""

    def fetch(column: str) -> Any:
        with svc.uow(write=False) as uow:
            return uow.session.exec(select(getattr(CaseRow, column))
                                    .where(CaseRow.number == change.number)).first()

    return scope.contains(change_facts(change), fetch)
