"""Translate between the engine's frozen CaseSnapshot and the storage row.

Engine-owned SLA state (deadlines, case data, pause bookkeeping) is kept as one
JSON document on the row; everything worklists and statistics filter on is a
real column.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any

from ..engine.case import CaseSnapshot, Deadline
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
    sla = row.sla or {}
    if sla and sla.get("format") != _FORMAT:
        raise ValueError(f"case {row.number}: unknown SLA document format {sla.get('format')!r}")
    return CaseSnapshot(
        number=row.number or "", workflow=row.workflow, version=row.workflow_version, state=row.state,
        opened_at=row.opened_at, updated_at=row.updated_at, escalation_level=row.escalation_level,
        escalation_top=escalation_top, supervised=row.supervised, holder_unit=row.holder_unit,
        origin_unit=row.origin_unit, reporter=row.reporter_id,
        data=MappingProxyType(dict(sla.get("data") or {})),
        deadlines=tuple(deadline_from_json(d) for d in sla.get("deadlines", [])),
        deadline_seq=int(sla.get("deadline_seq", 0)), breach_count=row.breach_count,
        sla_paused_seconds=float(sla.get("sla_paused_seconds", 0.0)), paused_since=_pdt(sla.get("paused_since")),
        closed_at=row.closed_at, outcome=row.outcome,
    )
