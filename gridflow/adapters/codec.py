"""Translate between the engine's frozen CaseSnapshot and the storage row.

Engine-owned SLA state (deadlines, case data, pause bookkeeping) is kept as one
JSON document on the row; everything worklists and statistics filter on is a
real column, derived here from the snapshot and its workflow definition.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping

from ..engine.case import CaseSnapshot, Deadline
from ..engine.definition import WorkflowDefinition
from ..engine.parts import open_parts
from .orm import CaseRow

_FORMAT = 1


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pdt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def deadline_to_json(d: Deadline) -> dict[str, Any]:
    return {
        "id": d.id, "timer": d.timer, "state": d.state, "calendar": d.calendar, "duration": d.duration,
        "started_at": _dt(d.started_at), "original_due": _dt(d.original_due), "due_at": _dt(d.due_at),
        "total": d.total, "consumed": d.consumed, "run_since": _dt(d.run_since),
        "paused_since": _dt(d.paused_since), "pauses": [[_dt(a), _dt(b)] for a, b in d.pauses],
        "extensions": [dict(e) for e in d.extensions], "warned": list(d.warned), "breaches": d.breaches,
        "next_breach_at": _dt(d.next_breach_at), "generation": d.generation,
    }


def deadline_from_json(j: dict[str, Any]) -> Deadline:
    return Deadline(
        id=j["id"], timer=j["timer"], state=j["state"], calendar=j["calendar"], duration=j["duration"],
        started_at=_pdt(j["started_at"]), original_due=_pdt(j["original_due"]), due_at=_pdt(j["due_at"]),
        total=float(j["total"]), consumed=float(j["consumed"]), run_since=_pdt(j.get("run_since")),
        paused_since=_pdt(j.get("paused_since")),
        pauses=tuple((_pdt(a), _pdt(b)) for a, b in j.get("pauses", [])),
        extensions=tuple(MappingProxyType(e) for e in j.get("extensions", [])),
        warned=tuple(j.get("warned", [])), breaches=int(j.get("breaches", 0)),
        next_breach_at=_pdt(j.get("next_breach_at")), generation=int(j.get("generation", 1)),
    )


def sla_document(case: CaseSnapshot) -> dict[str, Any]:
    return {
        "format": _FORMAT, "deadlines": [deadline_to_json(d) for d in case.deadlines],
        "data": dict(case.data), "deadline_seq": case.deadline_seq,
        "sla_paused_seconds": case.sla_paused_seconds, "paused_since": _dt(case.paused_since),
    }


def snapshot_of(row: CaseRow, escalation_top: int) -> CaseSnapshot:
    """The snapshot of a stored row (any object with the row's column attributes)."""
    return snapshot_from(_Attributes(row), escalation_top)


class _Attributes:
    __slots__ = ("row",)

    def __init__(self, row: Any) -> None:
        self.row = row

    def __getitem__(self, name: str) -> Any:
        return getattr(self.row, name)


def has_running_deadline(sla: Mapping[str, Any] | None) -> bool:
    """Whether a stored SLA document holds a running deadline, read without decoding it (an export's
    light needs the deadlines only then)."""
    sla = sla or {}
    if sla and sla.get("format") != _FORMAT:
        raise ValueError(f"unknown SLA document format {sla.get('format')!r}")
    return any(d.get("run_since") for d in sla.get("deadlines", []))


def snapshot_from(col: Mapping[str, Any], escalation_top: int) -> CaseSnapshot:
    """The snapshot of a row given as column name -> value."""
    sla = col["sla"] or {}
    if sla and sla.get("format") != _FORMAT:
        raise ValueError(f"case {col['number']}: unknown SLA document format {sla.get('format')!r}")
    return CaseSnapshot(
        number=col["number"] or "", workflow=col["workflow"], version=col["workflow_version"],
        state=col["state"],
        opened_at=col["opened_at"], updated_at=col["updated_at"], escalation_level=col["escalation_level"],
        escalation_top=escalation_top, supervised=col["supervised"], holder_unit=col["holder_unit"],
        origin_unit=col["origin_unit"], reporter=col["reporter_id"],
        data=MappingProxyType(dict(sla.get("data") or {})),
        deadlines=tuple(deadline_from_json(d) for d in sla.get("deadlines", [])),
        deadline_seq=int(sla.get("deadline_seq", 0)), breach_count=col["breach_count"],
        sla_paused_seconds=float(sla.get("sla_paused_seconds", 0.0)),
        paused_since=_pdt(sla.get("paused_since")),
        closed_at=col["closed_at"], outcome=col["outcome"],
    )


def case_columns(snap: CaseSnapshot, definition: WorkflowDefinition) -> dict[str, Any]:
    """Row columns derived from a snapshot (what worklists and statistics filter on)."""
    st = definition.states[snap.state]
    running = [d.next_breach_at for d in snap.deadlines if d.is_running and d.next_breach_at is not None]
    dues = [d.due_at for d in snap.deadlines if d.is_running and d.due_at is not None]
    return {
        "workflow_version": snap.version, "state": snap.state, "stage": st.stage,
        "escalation_level": snap.escalation_level, "supervised": snap.supervised, "closed": snap.is_closed,
        "outcome": snap.outcome, "holder_unit": snap.holder_unit,
        "holder_roles": "," + ",".join(st.holder_roles) + ",", "sla": sla_document(snap),
        "breach_count": snap.breach_count, "warned": any(d.warned and d.is_running for d in snap.deadlines),
        "next_due_at": min(running) if running else None, "updated_at": snap.updated_at,
        "closed_at": snap.closed_at, "rating": snap.data.get("rating"),
        "due_at": min(dues) if dues else None, "suspended": st.pauses_sla and not st.final,
        "co_units": co_units(snap),
    }


def co_units(snap: CaseSnapshot) -> str:
    """The units with an open co-handling part, comma-wrapped for a LIKE match; "" when none."""
    units = open_parts(snap.data)
    return "," + ",".join(units) + "," if units else ""
