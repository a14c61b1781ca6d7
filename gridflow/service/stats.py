"""Statistics: the figures per unit (三率 and the counters beside them), counted from the facts table
(``engine.facts``: derived from history, written with it), and how often each event and action occurred.

The definitions are written down in docs/three-rates.md and in the API's description of /stats/sla.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import UNIT_DAY_STATS, UNIT_MONTH_STATS, CaseRow, EventRow, FactRow
from ..engine.facts import derive_facts, intake_unit_of
from ..engine.tallies import FIELDS, STORED, split_period, tally  # noqa: F401  (FIELDS, tally: re-exported)
from .auth import Caller, require_staff
from .context import Services
from .lists import RequestInvalid
from .recording import response_states
from .scopes import area_terms


@dataclass(frozen=True)
class UnitStats:
    """The figures of one unit (or the total) over a period; every counter is a count of facts."""

    unit: str | None
    name: str
    kind: str
    counts: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        if name in FIELDS:
            return self.counts.get(name, 0)
        raise AttributeError(name)

    @property
    def awaiting_response(self) -> int:
        return max(0, self.receipts - self.responded - self.unanswered_returned - self.unanswered_withdrawn
                   - self.unanswered_passed_on)

    @property
    def open(self) -> int:
        gone = self.closed + self.returned_unresolved + self.passed_on + self.withdrawn
        return max(0, self.received - gone)

    @property
    def not_accepted(self) -> int:
        """Merged duplicates and rejected reports (不予受理), as before."""
        return self.merged + self.rejected

    @property
    def response_rate(self) -> float | None:
        """响应率: dispatches answered within their limit / dispatches received (less those withdrawn)."""
        return _rate(self.responded_on_time, self.receipts - self.unanswered_withdrawn)

    @property
    def resolution_rate(self) -> float | None:
        """解决率: resolved / cases received, less merged, rejected, passed on, withdrawn and open ones."""
        return _rate(self.resolved, self.resolved + self.closed_other + self.returned_unresolved)

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率: satisfied or basically satisfied / rated by the resident (defaults and missing apart)."""
        return _rate(self.satisfied + self.basically_satisfied, self.rated)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit, "name": self.name, "kind": self.kind}
        out.update({n: getattr(self, n) for n in FIELDS})
        out.update(not_accepted=self.not_accepted, response_rate=self.response_rate,
                   resolution_rate=self.resolution_rate, satisfaction_rate=self.satisfaction_rate)
        return out


@dataclass(frozen=True)
class SlaReport:
    date_from: date | None
    date_to: date | None
    units: list[UnitStats]
    total: UnitStats


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den > 0 else None


def sla_stats(svc: Services, caller: Caller, unit: str | None = None, date_from: date | None = None,
              date_to: date | None = None) -> SlaReport:
    """Per unit, the figures of the local days given (inclusive), summed from the summary rows (kept
    with the facts, one per unit and area: ``unit_month_stats`` for the period's whole calendar months,
    ``unit_day_stats`` for the days at its edges). A caller sees the figures
    of the cases located in its unit's area and its own unit's figures wherever the case lies (a
    department: its own; an admin: all). ``unit`` narrows to that unit's figures and those of the cases
    located in its area. Definitions: docs/three-rates.md.
    """
    require_staff(caller, "statistics")
    if date_from and date_to and date_to < date_from:
        raise RequestInvalid("'to' is before 'from'", fields={"to": "before from"})
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        period = split_period(date_from, date_to)
        parts = []
        if period.whole_months:
            lo, hi = period.months
            m = UNIT_MONTH_STATS.c
            parts.append(_sums(svc, caller, unit, UNIT_MONTH_STATS,
                               ([m.month >= lo] if lo else []) + ([m.month < hi] if hi else [])))
        for lo, hi in period.days:
            d = UNIT_DAY_STATS.c
            parts.append(_sums(svc, caller, unit, UNIT_DAY_STATS,
                               ([d.day >= lo] if lo else []) + ([d.day <= hi] if hi else [])))
        rows = [row for part in parts for row in uow.session.execute(part).all()]
    return _report(svc, rows, date_from, date_to)


def _sums(svc: Services, caller: Caller, unit: str | None, table: sa.Table, period: list[Any]) -> Any:
    """Per unit, the sum of every stored counter over the summary rows of the period that the caller may
    count (narrowed to ``unit``'s own and its area's)."""
    conds = [_seen_by(svc, caller, table), *period]
    if unit is not None:
        conds.append(_unit_and_area(svc, unit, table))
    return select(table.c.unit, *(sa.func.sum(table.c[name]) for name in STORED)).where(*conds) \
        .group_by(table.c.unit)


def _unit_and_area(svc: Services, unit: str, table: sa.Table) -> Any:
    """The unit's own figures and those of the cases located in its area (a department has none)."""
    own = table.c.unit == unit
    area = [table.c[_AREA_COLUMNS[col]].in_(sorted(values))
            for col, values in area_terms(svc, unit) if col in _AREA_COLUMNS and values]
    return sa.or_(own, *area)


def _seen_by(svc: Services, caller: Caller, table: sa.Table) -> Any:
    """The summary rows a caller may count: its area's cases, its own unit's work."""
    if caller.role == "admin":
        return sa.true()
    if not caller.unit:
        return sa.false()
    if caller.role == "department_handler":
        return table.c.unit == caller.unit
    return _unit_and_area(svc, caller.unit, table)


#: case column of a scope's area term -> the summary's column
_AREA_COLUMNS = {"district_code": "district_code", "street_code": "street_code",
                 "community_code": "community_code", "origin_unit": "grid_code"}


def _report(svc: Services, rows, date_from: date | None, date_to: date | None) -> SlaReport:
    per_unit: dict[str | None, dict[str, int]] = {}
    for unit_code, *sums in rows:
        counts = per_unit.setdefault(unit_code or None, {})
        for name, n in zip(STORED, sums):
            if n:
                counts[name] = counts.get(name, 0) + int(n)
    units = []
    for code, counts in per_unit.items():
        info = svc.units.get(code)
        units.append(UnitStats(code, info.name if info else (code or "—"), info.kind if info else "", counts))
    units.sort(key=lambda u: (-u.receipts, -u.received, u.unit or ""))
    total: dict[str, int] = {}
    for u in units:
        for name, n in u.counts.items():
            total[name] = total.get(name, 0) + n
    return SlaReport(date_from, date_to, units, UnitStats(None, "合计", "total", total))


@dataclass(frozen=True)
class Counts:
    by_type: dict[str, int] = field(default_factory=dict)
    by_action: dict[str, int] = field(default_factory=dict)


def event_counts(svc: Services) -> Counts:
    """How often each event type and each action occurred (the demo's stage coverage)."""
    with svc.uow(write=False) as uow:
        types = dict(uow.session.execute(select(EventRow.type, sa.func.count())
                                         .group_by(EventRow.type)).all())
        actions: dict[str, int] = {}
        for (data,) in uow.session.execute(select(EventRow.data).where(EventRow.type == "ActionTaken")):
            name = (data or {}).get("action", "?")
            actions[name] = actions.get(name, 0) + 1
    return Counts(types, actions)


@dataclass(frozen=True)
class Rebuilt:
    """What ``rebuild_facts`` did: the cases and history entries read, the facts written (by kind), the
    summary rows written."""

    cases: int
    events: int
    facts: int
    by_kind: dict[str, int] = field(default_factory=dict)
    summary_rows: int = 0


_REBUILD_CHUNK = 500


def rebuild_facts(svc: Services) -> Rebuilt:
    """Recompute the facts table from history, in one transaction: every fact deleted, every case's
    history folded again (``engine.facts``). Readers see the old facts or the new, never a mix."""
    c, e = CaseRow, EventRow
    by_kind: dict[str, int] = {}
    n_events = 0
    with svc.uow() as uow:
        conn = uow.connection
        conn.execute(sa.delete(FactRow.__table__))
        cases = conn.execute(select(c.id).order_by(c.id)).all()
        for start in range(0, len(cases), _REBUILD_CHUNK):
            chunk = cases[start:start + _REBUILD_CHUNK]
            history: dict[int, list[Any]] = {row.id: [] for row in chunk}
            for ev in conn.execute(select(e.case_id, e.seq, e.type, e.actor, e.role, e.at, e.data)
                                   .where(e.case_id.in_(list(history))).order_by(e.case_id, e.seq)):
                history[ev.case_id].append(ev)
            for row in chunk:
                events = history[row.id]
                n_events += len(events)
                case = uow.cases.load_by_id(row.id)
                snap = case.snapshot
                facts = derive_facts([], events, workflow=snap.workflow,
                                     intake_unit=intake_unit_of(events, snap.holder_unit),
                                     response_states=response_states(svc.catalog.get(snap.workflow,
                                                                                     snap.version)))
                uow.cases.add_facts(case, facts, summary=False)
                for f in facts:
                    by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
        summary = uow.cases.rebuild_summary()
        uow.commit()
    return Rebuilt(len(cases), n_events, sum(by_kind.values()), dict(sorted(by_kind.items())), summary)


def rebuild_summary(svc: Services) -> int:
    """Recompute the summary rows (``unit_day_stats``) from the facts table, in one transaction; the
    number of rows written. ``rebuild_facts`` does this too, after deriving the facts again."""
    with svc.uow() as uow:
        rows = uow.cases.rebuild_summary()
        uow.commit()
    return rows
