"""One case as a caller sees it: its summary with the SLA light, its detail, and its history.

Reads only what the caller's scope allows (:mod:`.scopes`); contact details are
masked here (:mod:`.masking`), once, for every entry point. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..adapters.codec import snapshot_of
from ..adapters.orm import CaseRow
from .auth import Caller
from .context import Services
from .masking import (
    Exposure, contact_for, events_for, exposure, hidden_reporter, is_confidential, text_for, value_for,
)
from .scopes import visible_row


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
    #: The earliest due instant of the running deadlines (what worklists sort on).
    due_at: datetime | None = None
    #: Flags a worklist shows: the SLA is paused (挂起), the level it is escalated to (0: not escalated), a
    #: deadline has passed, and the case is at the top of its ladder with nowhere left to climb.
    suspended: bool = False
    escalated: int = 0
    overdue: bool = False
    escalation_alert: bool = False


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
    #: One explanation per active deadline: calendar, start, pauses, extensions, due times, time used, left.
    deadlines: list[dict[str, Any]]


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


def _sla(svc: Services, row: CaseRow, now: datetime) -> tuple[Any, SlaLight]:
    engine = svc.catalog.engine(row.workflow, row.workflow_version)
    snap = snapshot_of(row, engine.definition.escalation.top)
    s = engine.sla_status(snap, now)
    label = None
    if s.get("deadline"):
        d = snap.deadline(s["deadline"])
        tdef = engine.timer_def(d.state, d.timer) if d is not None else None
        label = tdef.label.zh if tdef is not None else None
    return (engine, snap), SlaLight(s["light"], s["left_s"], s["due_at"], s["deadline"], label)


def _flags(row: CaseRow, sla: SlaLight, snap: Any) -> dict[str, Any]:
    return dict(
        due_at=row.due_at, suspended=bool(row.suspended), escalated=row.escalation_level,
        overdue=not row.closed and (row.breach_count > 0 or sla.light == "red"),
        escalation_alert=bool(snap.data.get("escalation_alerts")) and not row.closed,
    )


def _summary_fields(svc: Services, row: CaseRow, sla: SlaLight, seen: Exposure) -> dict[str, Any]:
    defn = svc.catalog.get(row.workflow, row.workflow_version)
    st = defn.states.get(row.state)
    return dict(
        number=row.number or "", workflow=row.workflow, workflow_version=row.workflow_version,
        state=row.state, state_label=st.label.zh if st else row.state, stage=row.stage,
        holder_unit=row.holder_unit, holder_roles=[r for r in row.holder_roles.split(",") if r],
        escalation_level=row.escalation_level, escalation_unit=row.escalation_unit, supervised=row.supervised,
        closed=row.closed, outcome=row.outcome, category=row.category, title=text_for(seen, row.title) or "",
        channel=row.channel,
        opened_at=row.opened_at, updated_at=row.updated_at, closed_at=row.closed_at,
        next_due_at=row.next_due_at, warned=row.warned, breach_count=row.breach_count, version=row.version,
        sla=sla,
    )


def summarize(svc: Services, caller: Caller | None, row: CaseRow, now: datetime | None = None, *,
              export: bool = False) -> CaseSummary:
    """The case as a line of a list, worklist or export: its title masked as the caller may see it."""
    (_, snap), sla = _sla(svc, row, now or svc.clock.now())
    return CaseSummary(**_summary_fields(svc, row, sla, exposure(caller, row, export=export)),
                       **_flags(row, sla, snap))


def get_case(svc: Services, caller: Caller, number: str) -> CaseDetail:
    now = svc.clock.now()
    with svc.uow(write=False) as uow:
        row = visible_row(svc, uow, caller, number)
    (engine, snap), sla = _sla(svc, row, now)
    seen = exposure(caller, row)
    contact = contact_for(caller, row)
    return CaseDetail(
        **_summary_fields(svc, row, sla, seen), **_flags(row, sla, snap), description=contact.description,
        origin_unit=row.origin_unit,
        community_code=row.community_code, street_code=row.street_code, district_code=row.district_code,
        address=contact.address, lat=contact.lat, lon=contact.lon, reporter_id=contact.reporter_id,
        reporter_name=contact.name, reporter_phone=contact.phone, contact_masked=not seen.text,
        attachments=value_for(seen, list(row.attachments or [])), rating=row.rating,
        data=value_for(seen, dict(snap.data)),
        first_response_at=row.first_response_at,
        allowed_actions=[] if row.closed else engine.allowed_actions(snap, caller.role),
        deadlines=[e.as_dict() for e in engine.explain(snap, now)],
    )


def history(svc: Services, caller: Caller, number: str) -> list[EventView]:
    with svc.uow(write=False) as uow:
        row = visible_row(svc, uow, caller, number)
        events = uow.cases.events(row.id)
    hide = hidden_reporter(caller, confidential=is_confidential(row), number=row.number,
                           reporter_id=row.reporter_id)
    dicts = events_for(caller, ({"type": e.type, "actor": e.actor, "role": e.role, "data": e.data}
                                for e in events), hide_actor=hide)
    return [EventView(e.seq, e.type, d["actor"], e.role, e.at, d["data"], e.prev_hash, e.hash)
            for e, d in zip(events, dicts)]
