"""What a change sends out beyond its workflow's notifications: subscribers' events, the resident's notices.

``recording.apply_decision`` calls :func:`outbound` for every change inside its unit of work, so the rows
commit with the change or not at all: one per active subscriber per event type it chose, and the notices
for the reporting resident (:mod:`gridflow.engine.resident_notices`) when the case has a phone.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..adapters.notifiers import SUBSCRIBER_KIND
from ..adapters.ports import ChainedEvent, StoredCase, UnitOfWork
from ..engine.case import CaseSnapshot, Notification
from ..engine.resident_notices import resident_notices
from .context import Services

#: The event fields a subscriber receives (no personal data: reporters, phones, free text stay out).
_EVENT_FIELDS = ("action", "kind", "from_state", "to_state", "state", "outcome", "level", "from_level",
                 "to_level", "unit", "from_unit", "to_unit", "deadline", "timer")


def outbound(svc: Services, uow: UnitOfWork, case: StoredCase, snap: CaseSnapshot,
             chained: Iterable[ChainedEvent]) -> list[Notification]:
    """The outbox rows a change calls for beyond the workflow's own notifications: each subscribed event
    for each subscriber that chose it, and the resident's notices."""
    events = list(chained)
    out = [_subscriber_row(snap, sub, e) for sub in uow.cases.subscribers() for e in events
           if sub.wants(e.type)]
    out.extend(_resident_rows(svc, uow, case, snap, events))
    return out


def _subscriber_row(snap: CaseSnapshot, sub: Any, e: ChainedEvent) -> Notification:
    event = {"type": e.type, "case": snap.number, "workflow": snap.workflow, "seq": e.seq,
             "at": e.at.isoformat(), "state": snap.state,
             "data": {k: e.data[k] for k in _EVENT_FIELDS if k in e.data and _plain(e.data[k])}}
    return Notification(SUBSCRIBER_KIND, snap.number, (), None, e.type,
                        {"subscriber_id": sub.id, "event": event})


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _resident_rows(svc: Services, uow: UnitOfWork, case: StoredCase, snap: CaseSnapshot,
                   events: list[ChainedEvent]) -> list[Notification]:
    if not any(e.type in ("CaseReported", "ActionTaken") for e in events):
        return []
    unit = svc.units.get(snap.holder_unit) if snap.holder_unit else None
    defn = svc.catalog.get(snap.workflow, snap.version)
    response = frozenset(name for name, st in defn.states.items() if st.stage == "response")
    notices = resident_notices(snap.number, events, snap.data, unit.name if unit else "", response)
    if not notices:
        return []
    phone = uow.cases.reporter_phone(case.id)
    if not phone:
        return []
    return [Notification(n.kind, snap.number, ("resident",), None, n.message, {**n.data, "phone": phone})
            for n in notices]

