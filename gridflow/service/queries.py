"""The read side: case views, filtered lists, worklists, history and the SLA figures (三率).

Every function takes the caller and reads only what its scope allows (see
:mod:`.privacy`); contact details are masked here, once, for every entry point.
Nothing here writes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.codec import snapshot_of
from ..adapters.orm import ApiKey, CaseRow, EventRow, TimerRow, User
from ..engine.errors import CaseNotFound, GridflowError
from .context import Services
from .history import ChainReport, verify
from .privacy import Caller, contact_for, events_for, mask_value, require_staff, scope_of, sees_contact

from ..engine.calendar import LOCAL_ZONE as LOCAL
MAX_PAGE = 200


class RequestInvalid(GridflowError):
    code = "request_invalid"
    status = 422


# --- views --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlaLight:
    """The most urgent running deadline: green / yellow / red, and working time left (negative: overdue)."""

    light: str
    left_s: float | None = None
    due_at: datetime | None = None
    deadline: str | None = None
    label: str | None = None


@dataclass(frozen=True, kw_only=True)
class CaseSummary:
    number: str
    workflow: str
    workflow_version: int
    state: str
    state_label: str
    stage: str
    holder_unit: str | None
    holder_roles: list[str]
    escalation_level: int
    escalation_unit: str | None
    supervised: bool
    closed: bool
    outcome: str | None
    category: str
    title: str
    channel: str
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    next_due_at: datetime | None
    warned: bool
    breach_count: int
    version: int
    sla: SlaLight


@dataclass(frozen=True, kw_only=True)
class CaseDetail(CaseSummary):
    description: str
    origin_unit: str | None
    community_code: str | None
    street_code: str | None
    district_code: str | None
    address: str | None
    lat: float | None
    lon: float | None
    reporter_id: str | None
    reporter_name: str | None
    reporter_phone: str | None
    contact_masked: bool
    attachments: list[dict[str, Any]]
    rating: str | None
    data: dict[str, Any]
    first_response_at: datetime | None
    #: Actions the caller's role may take in the current state.
    allowed_actions: list[str]
    #: One explanation per active deadline: calendar, start, pauses, extensions, due times, time used and left.
    deadlines: list[dict[str, Any]]


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


@dataclass(frozen=True)
class EventView:
    seq: int
    type: str
    actor: str
    role: str
    at: datetime
    data: dict[str, Any]
    prev_hash: str
    hash: str


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


@dataclass(frozen=True)
class TimerBacklog:
    pending: int
    due: int
    oldest_due_at: datetime | None
    lag_s: float


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den > 0 else None


# --- helpers ------------------------------------------------------------------------------------

def _sla(svc: Services, row: CaseRow, now: datetime) -> tuple[Any, SlaLight]:
    engine = svc.catalog.engine(row.workflow, row.workflow_version)
    snap = snapshot_of(row, engine.definition.escalation.top)
    s = engine.sla_status(snap, now)
    label = None
    if s.get("deadline"):
        d = snap.deadline(s["deadline"])
        tdef = engine.definition.timer(d.state, d.timer) if d is not None else None
        label = tdef.label.zh if tdef is not None else None
    return (engine, snap), SlaLight(s["light"], s["left_s"], s["due_at"], s["deadline"], label)


def _summary_fields(svc: Services, row: CaseRow, sla: SlaLight) -> dict[str, Any]:
    defn = svc.catalog.get(row.workflow, row.workflow_version)
    st = defn.states.get(row.state)
    return dict(
        number=row.number or "", workflow=row.workflow, workflow_version=row.workflow_version, state=row.state,
        state_label=st.label.zh if st else row.state, stage=row.stage, holder_unit=row.holder_unit,
        holder_roles=[r for r in row.holder_roles.split(",") if r], escalation_level=row.escalation_level,
        escalation_unit=row.escalation_unit, supervised=row.supervised, closed=row.closed, outcome=row.outcome,
        category=row.category, title=row.title, channel=row.channel, opened_at=row.opened_at,
        updated_at=row.updated_at, closed_at=row.closed_at, next_due_at=row.next_due_at, warned=row.warned,
        breach_count=row.breach_count, version=row.version, sla=sla,
    )


def summarize(svc: Services, row: CaseRow, now: datetime | None = None) -> CaseSummary:
    _, sla = _sla(svc, row, now or svc.clock.now())
    return CaseSummary(**_summary_fields(svc, row, sla))


def _visible_row(svc: Services, uow, caller: Caller, number: str) -> CaseRow:
    svc.units.refresh(uow.session)
    row = uow.session.exec(select(CaseRow).where(CaseRow.number == number, scope_of(svc, caller).sql())).first()
    if row is None:
        raise CaseNotFound(f"no case {number!r}", number=number)
    return row


def _aware(at: datetime | None) -> datetime | None:
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


# --- cases --------------------------------------------------------------------------------------

def get_case(svc: Services, caller: Caller, number: str) -> CaseDetail:
    now = svc.clock.now()
    with svc.uow(write=False) as uow:
        row = _visible_row(svc, uow, caller, number)
    (engine, snap), sla = _sla(svc, row, now)
    contact = contact_for(caller, row)
    data = dict(snap.data) if sees_contact(caller) else mask_value(dict(snap.data))
    return CaseDetail(
        **_summary_fields(svc, row, sla), description=contact.description, origin_unit=row.origin_unit,
        community_code=row.community_code, street_code=row.street_code, district_code=row.district_code,
        address=contact.address, lat=contact.lat, lon=contact.lon, reporter_id=row.reporter_id,
        reporter_name=contact.name, reporter_phone=contact.phone, contact_masked=not sees_contact(caller),
        attachments=list(row.attachments or []), rating=row.rating, data=data,
        first_response_at=row.first_response_at,
        allowed_actions=[] if row.closed else engine.allowed_actions(snap, caller.role),
        deadlines=[e.as_dict() for e in engine.explain(snap, now)],
    )


def _filtered(svc: Services, caller: Caller, f: CaseFilter, now: datetime):
    conds = [scope_of(svc, caller).sql()]
    for col in ("state", "stage", "category", "workflow", "escalation_level", "warned", "supervised", "closed"):
        value = getattr(f, col)
        if value is not None:
            conds.append(getattr(CaseRow, col) == value)
    if f.unit is not None:
        conds.append(sa.or_(*(getattr(CaseRow, c) == f.unit for c in (
            "holder_unit", "origin_unit", "community_code", "street_code", "district_code", "escalation_unit"))))
    if f.overdue is not None:
        late = sa.and_(CaseRow.closed == False, sa.or_(CaseRow.breach_count > 0,  # noqa: E712
                                                       CaseRow.next_due_at <= now))
        conds.append(late if f.overdue else sa.not_(late))
    if f.reported_from is not None:
        conds.append(CaseRow.opened_at >= _aware(f.reported_from))
    if f.reported_to is not None:
        conds.append(CaseRow.opened_at < _aware(f.reported_to))
    return conds


def list_cases(svc: Services, caller: Caller, f: CaseFilter = CaseFilter(), cursor: str | None = None,
               limit: int = 50) -> CasePage:
    """Newest first; ``next_cursor`` continues after the last case of this page."""
    limit = max(1, min(limit, MAX_PAGE))
    now = svc.clock.now()
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        conds = _filtered(svc, caller, f, now)
        if cursor:
            conds.append(CaseRow.id < decode_cursor(cursor))
        rows = list(uow.session.exec(select(CaseRow).where(*conds).order_by(CaseRow.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return CasePage([summarize(svc, r, now) for r in rows], encode_cursor(rows[-1].id) if more and rows else None)


def export_rows(svc: Services, caller: Caller, f: CaseFilter = CaseFilter(), batch: int = 500
                ) -> Iterator[dict[str, Any]]:
    """Every case in scope as a flat record for a spreadsheet; contacts always masked."""
    require_staff(caller, "exporting cases")
    now = svc.clock.now()
    last = None
    while True:
        with svc.uow(write=False) as uow:
            svc.units.refresh(uow.session)
            conds = _filtered(svc, caller, f, now)
            if last is not None:
                conds.append(CaseRow.id > last)
            rows = list(uow.session.exec(select(CaseRow).where(*conds).order_by(CaseRow.id).limit(batch)))
        for row in rows:
            c = contact_for(caller, row, export=True)
            s = summarize(svc, row, now)
            yield {"number": s.number, "workflow": s.workflow, "state": s.state, "state_label": s.state_label,
                   "stage": s.stage, "category": s.category, "title": s.title, "description": c.description,
                   "address": c.address or "", "lat": c.lat, "lon": c.lon, "reporter_name": c.name or "",
                   "reporter_phone": c.phone or "", "holder_unit": s.holder_unit or "",
                   "escalation_level": s.escalation_level, "supervised": s.supervised,
                   "opened_at": s.opened_at.isoformat(), "closed_at": s.closed_at.isoformat() if s.closed_at else "",
                   "outcome": s.outcome or "", "rating": row.rating or "", "breach_count": s.breach_count,
                   "light": s.sla.light}
        if len(rows) < batch:
            return
        last = rows[-1].id


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
    return [summarize(svc, r, now) for r in rows]


def history(svc: Services, caller: Caller, number: str) -> list[EventView]:
    with svc.uow(write=False) as uow:
        row = _visible_row(svc, uow, caller, number)
        events = uow.cases.events(row.id)
    dicts = events_for(caller, ({"data": e.data} for e in events))
    return [EventView(e.seq, e.type, e.actor, e.role, e.at, d["data"], e.prev_hash, e.hash)
            for e, d in zip(events, dicts)]


def verify_case(svc: Services, caller: Caller, number: str) -> ChainReport:
    with svc.uow(write=False) as uow:
        row = _visible_row(svc, uow, caller, number)
        return verify(row.number or "", uow.cases.events(row.id), row.last_hash)


# --- statistics ---------------------------------------------------------------------------------

def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, LOCAL).astimezone(timezone.utc)


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
    one = lambda cond: sa.func.sum(sa.case((cond, 1), else_=0))  # noqa: E731
    cols = [
        sa.func.count().label("received"), one(c.closed == False).label("open"),  # noqa: E712
        one(c.closed == True).label("closed"), one(c.first_response_at.is_not(None)).label("responded"),  # noqa: E712
        one(c.outcome == "resolved").label("resolved"),
        one(c.outcome.in_(("rejected", "merged"))).label("not_accepted"),
        one(c.breach_count == 0).label("on_time"), one(c.breach_count > 0).label("overdue"),
        one(c.escalation_level > 0).label("escalated"), one(c.supervised == True).label("supervised"),  # noqa: E712
        one(c.rating.is_not(None)).label("rated"), one(c.rating == "satisfied").label("satisfied"),
        one(c.rating == "basically_satisfied").label("basically_satisfied"),
        one(c.rating == "dissatisfied").label("dissatisfied"),
    ]
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


def timer_backlog(svc: Services) -> TimerBacklog:
    """Pending timers and how far behind the oldest due one is (timer lag, whoever fires them)."""
    now = svc.clock.now()
    with svc.uow(write=False) as uow:
        pending, due, oldest = uow.session.execute(select(
            sa.func.count(), sa.func.sum(sa.case((TimerRow.due_at <= now, 1), else_=0)),
            sa.func.min(TimerRow.due_at))).one()
    oldest_due = _aware(datetime.fromisoformat(oldest) if isinstance(oldest, str) else oldest)
    lag = max(0.0, (now - oldest_due).total_seconds()) if oldest_due and int(due or 0) else 0.0
    return TimerBacklog(int(pending or 0), int(due or 0), oldest_due, lag)


# --- organisation -------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitView:
    code: str
    name: str
    kind: str
    parent: str | None
    has_boundary: bool = False


@dataclass(frozen=True)
class UserView:
    id: str
    name: str
    role: str
    unit: str | None
    active: bool
    phone: str | None = None


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    user_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None


def list_units(svc: Services, caller: Caller, kind: str | None = None) -> list[UnitView]:
    require_staff(caller, "the unit directory")
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
    return sorted((UnitView(u.code, u.name, u.kind, u.parent, bool(u.boundary_wkt)) for u in svc.units.all()
                   if kind is None or u.kind == kind), key=lambda u: u.code)


def list_users(svc: Services, unit: str | None = None) -> list[UserView]:
    with svc.uow(write=False) as uow:
        stmt = select(User).order_by(User.id)
        if unit is not None:
            stmt = stmt.where(User.unit_code == unit)
        return [UserView(u.id, u.name, u.role, u.unit_code, u.active, u.phone) for u in uow.session.exec(stmt)]


def list_api_keys(svc: Services, user_id: str | None = None) -> list[ApiKeyView]:
    with svc.uow(write=False) as uow:
        stmt = select(ApiKey).order_by(ApiKey.id)
        if user_id is not None:
            stmt = stmt.where(ApiKey.user_id == user_id)
        return [ApiKeyView(k.id or 0, k.user_id, k.label, k.created_at, k.revoked_at)
                for k in uow.session.exec(stmt)]


@dataclass(frozen=True)
class Counts:
    by_type: dict[str, int] = field(default_factory=dict)
    by_action: dict[str, int] = field(default_factory=dict)


def event_counts(svc: Services) -> Counts:
    """How often each event type and each action occurred (the demo's stage coverage)."""
    with svc.uow(write=False) as uow:
        types = dict(uow.session.execute(select(EventRow.type, sa.func.count()).group_by(EventRow.type)).all())
        actions: dict[str, int] = {}
        for (data,) in uow.session.execute(select(EventRow.data).where(EventRow.type == "ActionTaken")):
            name = (data or {}).get("action", "?")
            actions[name] = actions.get(name, 0) + 1
    return Counts(types, actions)


# --- workflows ----------------------------------------------------------------------------------

class DiagramUnavailable(GridflowError):
    code = "diagram_unavailable"
    status = 501


def diagram(catalog, name: str, version: int | None = None, lang: str = "zh") -> tuple[Any, str]:
    """A workflow version and its Mermaid state diagram, with Chinese or English labels."""
    defn = catalog.get(name, version)
    try:
        from ..engine.diagram import to_mermaid
    except ImportError:
        raise DiagramUnavailable("this build of gridflow cannot draw diagrams yet (gridflow.engine.diagram "
                                 "is missing)") from None
    return defn, to_mermaid(defn, lang=lang)
