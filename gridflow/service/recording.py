"""Writing an engine decision: hash-chained events, case columns (compare-and-set), timers, outbox.

Every use case that changes a case (report, action, timer firing, migration) ends here, inside its
unit of work, so a change is written whole or not at all.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.exc import OperationalError

from ..adapters.codec import sla_document
from ..adapters.db import DatabaseUnavailable
from ..adapters.repository import CaseRecord
from ..engine.case import CaseSnapshot, Decision, Event
from .context import Change, Services
from .history import chain_hash
from .unit_of_work import UnitOfWork

# --- shared machinery -------------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def event_dicts(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    return tuple({"seq": r["seq"], "type": r["type"], "actor": r["actor"], "role": r["role"],
                  "at": r["at"].isoformat(), "data": r["data"], "hash": r["hash"]} for r in rows)


def _columns(svc: Services, snap: CaseSnapshot) -> dict[str, Any]:
    """Row columns derived from a snapshot (what worklists and statistics filter on)."""
    defn = svc.catalog.get(snap.workflow, snap.version)
    st = defn.states[snap.state]
    running = [d.next_breach_at for d in snap.deadlines if d.is_running and d.next_breach_at is not None]
    return {
        "workflow_version": snap.version, "state": snap.state, "stage": st.stage, "escalation_level": snap.escalation_level,
        "supervised": snap.supervised, "closed": snap.is_closed, "outcome": snap.outcome,
        "holder_unit": snap.holder_unit, "holder_roles": "," + ",".join(st.holder_roles) + ",",
        "sla": sla_document(snap), "breach_count": snap.breach_count,
        "warned": any(d.warned and d.is_running for d in snap.deadlines),
        "next_due_at": min(running) if running else None, "updated_at": snap.updated_at,
        "closed_at": snap.closed_at, "rating": snap.data.get("rating"),
    }


def apply_decision(svc: Services, uow: UnitOfWork, row: CaseRecord, decision: Decision, *, expected_version: int,
           extra_events: list[Event] | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Write one decision: events, case columns (compare-and-set), timers, outbox."""
    snap = decision.case
    events = list(extra_events or []) + list(decision.events)
    values = _columns(svc, snap)
    if decision.escalated_to:
        target = svc.units.ancestor_of_kind(row.origin_unit, decision.escalated_to)
        if target is not None:
            values["escalation_unit"] = target.code
            events.append(Event("EscalationRouted", snap.updated_at, "system", "system",
                                {"level": decision.escalated_to, "unit": target.code}))
        else:
            events.append(Event("EscalationRouted", snap.updated_at, "system", "system",
                                {"level": decision.escalated_to, "unit": None,
                                 "note": "no unit of that level above the case's origin"}))
    if row.first_response_at is None and any(
            e.type == "ActionTaken" and e.role not in ("system", "resident", "grid_worker", "hotline_operator")
            for e in events):
        values["first_response_at"] = snap.updated_at
    prev, seq = row.last_hash, row.event_seq
    event_rows: list[dict[str, Any]] = []
    for e in events:
        seq += 1
        data = dict(e.data)
        digest = chain_hash(prev, seq, e.type, e.actor, e.role, e.at, data)
        event_rows.append({"case_id": row.id, "seq": seq, "type": e.type, "actor": e.actor, "role": e.role,
                           "data": data, "at": e.at, "prev_hash": prev, "hash": digest})
        prev = digest
    values.update(event_seq=seq, last_hash=prev)
    now = svc.clock.now()
    with uow.cases.batch():
        version = uow.cases.save_versioned(row, expected_version, values)
        uow.cases.append_events(event_rows)
        uow.cases.cancel(row.id, decision.cancel)
        uow.cases.schedule(row.id, decision.schedule, version)
        uow.cases.outbox([{"case_id": row.id, "kind": n.kind, "created_at": now, "next_attempt_at": now,
                           "status": "pending", "attempts": 0, "last_error": None,
                           "payload": {"case": n.case, "roles": list(n.roles), "unit": n.unit,
                                       "message": n.message, "data": dict(n.data)}}
                          for n in decision.notifications])
    for k, v in values.items():
        setattr(row, k, v)
    row.version = version
    return version, event_rows


def change_of(row: CaseRecord, events: list[dict[str, Any]], source: str) -> Change:
    return Change(row.number or "", row.workflow, row.state, row.version, event_dicts(events), row.holder_unit,
                  row.escalation_unit, row.community_code, row.street_code, row.district_code, row.reporter_id,
                  source)


def db_errors(fn):
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database unavailable or locked, nothing was changed: {exc.orig}",
                                      retry_after=1) from exc

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


