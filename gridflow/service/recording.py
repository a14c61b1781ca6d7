"""Writing an engine decision: hash-chained events, case columns (compare-and-set), timers, outbox.

Every use case that changes a case (report, action, timer firing, migration) ends here, inside its
unit of work, so a change is written whole or not at all.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..adapters.ports import CaseUpdate, ChainedEvent, StoredCase, UnitOfWork
from ..engine.case import CaseSnapshot, Decision, Event
from ..engine.definition import WorkflowDefinition
from ..engine.facts import FACT_EVENT_TYPES, Fact, derive_facts
from ..engine.errors import PayloadInvalid, StoreUnavailable
from ..engine.payload import EVENT_BOUNDS, json_problem
from ..engine.worklists import route_escalation, routed
from .context import Change, Services
from .history import chain_hash
from .outbound import outbound

# --- what a change answers ---------------------------------------------------------------------

@dataclass(frozen=True)
class ActionResult:
    number: str
    state: str
    version: int
    events: tuple[dict[str, Any], ...]
    replayed: bool = False
    resident_token: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "version": self.version,
                "events": list(self.events)}


def event_dicts(events: list[ChainedEvent]) -> tuple[dict[str, Any], ...]:
    return tuple({"seq": e.seq, "type": e.type, "actor": e.actor, "role": e.role,
                  "at": e.at.isoformat(), "data": e.data, "hash": e.hash} for e in events)


def apply_decision(svc: Services, uow: UnitOfWork, case: StoredCase, decision: Decision,
                   extra_events: list[Event] | None = None) -> tuple[StoredCase, list[ChainedEvent]]:
    """Write one decision on ``case`` as read: events (hash-chained), the case (compare-and-set on its
    version), timers, outbox (the workflow's notifications, then what subscribers and the resident are
    sent: :mod:`.outbound`). Returns the case as saved and the events written."""
    events = list(extra_events or []) + list(decision.events)
    snap, escalation_unit = _route_escalation(svc, case, decision, events)
    _refuse_unstorable(case, snap, events)
    chained = _chain(case, events)
    facts = _facts(svc, uow, case, snap, chained)
    # 首次响应: the first response of a unit the case was dispatched to (not the dispatch itself).
    first_response = None
    if case.first_response_at is None:
        first_response = next((f.occurred_at for f in facts if f.kind == "response" and f.role == "lead"),
                              None)
    notifications = decision.notifications + tuple(outbound(svc, uow, case, snap, chained))
    saved = uow.cases.save(case, CaseUpdate(
        snap, tuple(chained), decision.schedule, decision.cancel, notifications, svc.clock.now(),
        escalation_unit, first_response, tuple(facts)))
    return saved, chained


def _route_escalation(svc: Services, case: StoredCase, decision: Decision,
                      events: list[Event]) -> tuple[CaseSnapshot, str | None]:
    """Hand an escalated case to the unit of its new level above the case's place (``EscalationRouted``).

    Where the place has no unit of that kind (a district without streets; a report outside every grid,
    filed at its street or district) the nearest unit above serves it and the event says so; its handlers
    then work the case at that unit's level. At the top of the ladder the case stays with the top unit,
    flagged (``escalation_alerts``)."""
    snap = decision.case
    if any(e.type == "EscalationAlertRaised" for e in decision.events):
        data = dict(snap.data)
        data["escalation_alerts"] = int(data.get("escalation_alerts") or 0) + 1
        snap = replace(snap, data=MappingProxyType(data))
    if not decision.escalated_to:
        return snap, None
    place = [(u.code, u.kind) for u in svc.units.ancestors(snap.origin_unit)]
    route = route_escalation(place, decision.escalated_to)
    data = {"level": decision.escalated_to, "unit": route.unit}
    if route.note:
        data["note"] = route.note
    if route.unit is not None and route.unit_kind != decision.escalated_to:
        data["unit_kind"] = route.unit_kind
    snap = routed(snap, route, svc.catalog.get(snap.workflow, snap.version))
    if snap.escalation_level != decision.case.escalation_level:
        data["level_reached"] = svc.catalog.get(snap.workflow, snap.version).escalation.levels[
            snap.escalation_level]
    events.append(Event("EscalationRouted", snap.updated_at, "system", "system", data))
    return snap, route.unit
def _facts(svc: Services, uow: UnitOfWork, case: StoredCase, snap, chained: list[ChainedEvent]) -> list[Fact]:
    """The statistical facts this change adds (``engine.facts``), written in the same unit of work."""
    if not any(e.type in FACT_EVENT_TYPES for e in chained):
        return []  # e.g. a warning: nothing to count
    prior = uow.cases.facts(case.id) if case.event_seq else []
    return derive_facts(prior, chained, workflow=snap.workflow, intake_unit=snap.holder_unit,
                        response_states=response_states(svc.catalog.get(snap.workflow, snap.version)))


def response_states(defn: WorkflowDefinition) -> frozenset[str]:
    """The states of a workflow's response stage (a dissatisfied rating sending a case back there is a
    rework round)."""
    return frozenset(name for name, st in defn.states.items() if st.stage == "response")


def _refuse_unstorable(case: StoredCase, snap, events: list[Event]) -> None:
    """Refuse the whole change if anything it would store could not be serialised, masked and shown
    again for as long as the case lives: history is append-only, so a bad entry could never be mended.

    Entry points bound what they take in (``engine.payload``); this is the last line, for every
    writer (actions, reports from any channel, timers, migrations), before anything is chained.
    """
    for e in events:
        problem = json_problem(e.data, EVENT_BOUNDS)
        if problem is not None:
            field, message = problem
            raise PayloadInvalid(f"{e.type} for case {snap.number} cannot be stored, nothing was changed: "
                                 f"{field} {message}", fields={field: message}, event=e.type)
    if snap.data is not case.snapshot.data:
        problem = json_problem(snap.data, EVENT_BOUNDS, "data")
        if problem is not None:
            field, message = problem
            raise PayloadInvalid(f"case {snap.number} data cannot be stored, nothing was changed: "
                                 f"{field} {message}", fields={field: message})


def _chain(case: StoredCase, events: list[Event]) -> list[ChainedEvent]:
    prev, seq = case.last_hash, case.event_seq
    out: list[ChainedEvent] = []
    for e in events:
        seq += 1
        data = dict(e.data)
        digest = chain_hash(prev, seq, e.type, e.actor, e.role, e.at, data)
        out.append(ChainedEvent(seq, e.type, e.actor, e.role, e.at, data, prev, digest))
        prev = digest
    return out


def change_of(case: StoredCase, events: list[ChainedEvent], source: str) -> Change:
    snap = case.snapshot
    return Change(snap.number, snap.workflow, snap.state, case.version, event_dicts(events),
                  snap.holder_unit, case.escalation_unit, case.community_code, case.street_code,
                  case.district_code, snap.reporter, source, bool(snap.data.get("confidential")))


def db_errors(fn):
    """A statement that failed because the database is away or locked is phrased for the caller (503)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StoreUnavailable as exc:
            if exc.cause is None:  # already phrased (no connection, busy writers)
                raise
            raise StoreUnavailable(f"database unavailable or locked, nothing was changed: {exc.cause}",
                                   retry_after=1) from exc

    return wrapper
