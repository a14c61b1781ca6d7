"""Statistics: the SLA figures per responsible unit (三率), and how often each event and action occurred."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import CaseRow, EventRow
from ..engine.calendar import LOCAL_ZONE as LOCAL
from .auth import Caller, require_staff
from .context import Services
from .lists import RequestInvalid
from .scopes import scope_of



@dataclass(frozen=True)
class UnitStats:
    unit: str | None
    name: str
    kind: str
    received: int = 0
    open: int = 0
    closed: int = 0
    responded: int = 0
    resolved: int = 0
    not_accepted: int = 0
    on_time: int = 0
    overdue: int = 0
    escalated: int = 0
    supervised: int = 0
    rated: int = 0
    satisfied: int = 0
    basically_satisfied: int = 0
    dissatisfied: int = 0

    @property
    def response_rate(self) -> float | None:
        """响应率: cases a unit answered (acted on) of those it received."""
        return _rate(self.responded, self.received)

    @property
    def resolution_rate(self) -> float | None:
        """解决率: resolved of those received, not counting rejected reports and merged duplicates."""
        return _rate(self.resolved, self.received - self.not_accepted)

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率: satisfied or basically satisfied of the cases residents rated."""
        return _rate(self.satisfied + self.basically_satisfied, self.rated)


@dataclass(frozen=True)
class SlaReport:
    date_from: date | None
    date_to: date | None
    units: list[UnitStats]
    total: UnitStats


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den > 0 else None


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, LOCAL).astimezone(timezone.utc)


def _counters() -> list[sa.ColumnElement]:
    """One labelled SUM per :class:`UnitStats` counter, in the order of its fields."""
    c = CaseRow
    one = lambda cond: sa.func.sum(sa.case((cond, 1), else_=0))  # noqa: E731
    return [
        sa.func.count().label("received"), one(c.closed == False).label("open"),  # noqa: E712
        one(c.closed == True).label("closed"),  # noqa: E712
        one(c.first_response_at.is_not(None)).label("responded"),
        one(c.outcome == "resolved").label("resolved"),
        one(c.outcome.in_(("rejected", "merged"))).label("not_accepted"),
        one(c.breach_count == 0).label("on_time"), one(c.breach_count > 0).label("overdue"),
        one(c.escalation_level > 0).label("escalated"),
        one(c.supervised == True).label("supervised"),  # noqa: E712
        one(c.rating.is_not(None)).label("rated"), one(c.rating == "satisfied").label("satisfied"),
        one(c.rating == "basically_satisfied").label("basically_satisfied"),
        one(c.rating == "dissatisfied").label("dissatisfied"),
    ]


def sla_stats(svc: Services, caller: Caller, unit: str | None = None, date_from: date | None = None,
              date_to: date | None = None) -> SlaReport:
    """Per responsible unit, for cases reported between the two local dates (inclusive).

    A case counts once, for the unit that holds it (the department it was dispatched
    to, or the community that handled it). ``unit`` narrows to cases located in that
    unit's area or held by it. On time: no deadline breached; overdue: at least one.
    """
    require_staff(caller, "statistics")
    if date_from and date_to and date_to < date_from:
        raise RequestInvalid("'to' is before 'from'", fields={"to": "before from"})
    c = CaseRow
    cols = _counters()
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        conds = [scope_of(svc, caller).sql()]
        if unit is not None:
            conds.append(sa.or_(*(getattr(c, col) == unit for col in (
                "holder_unit", "origin_unit", "community_code", "street_code", "district_code"))))
        if date_from is not None:
            conds.append(c.opened_at >= _day_start(date_from))
        if date_to is not None:
            conds.append(c.opened_at < _day_start(date_to + timedelta(days=1)))
        rows = uow.session.execute(select(c.holder_unit, *cols).where(*conds).group_by(c.holder_unit)).all()
    names = [col.name for col in cols]
    units = []
    for r in rows:
        info = svc.units.get(r[0])
        units.append(UnitStats(r[0], info.name if info else (r[0] or "—"), info.kind if info else "",
                               **{n: int(v or 0) for n, v in zip(names, r[1:])}))
    units.sort(key=lambda u: (-u.received, u.unit or ""))
    total = UnitStats(None, "合计", "total", **{n: sum(getattr(u, n) for u in units) for n in names})
    return SlaReport(date_from, date_to, units, total)


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
