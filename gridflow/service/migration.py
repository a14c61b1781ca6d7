"""Moving open cases onto a new version of their workflow (``gridflow workflows migrate``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from ..engine.case import Actor, Event
from ..engine.definition import CASE_LEVEL
from ..engine.errors import PayloadInvalid
from .context import Services
from .recording import apply_decision, change_of, db_errors


@db_errors
def migrate_cases(svc: Services, name: str, to_version: int, state_map: Mapping[str, str],
                  actor: Actor | None = None) -> int:
    """Move open cases of ``name`` onto ``to_version``, mapping states; recorded in each case's history.

    The old deadlines stop and the mapped state's deadlines start afresh under the new rules.
    """
    target = svc.catalog.get(name, to_version)
    engine = svc.catalog.engine(name, to_version)
    actor = actor or Actor("admin", "admin")
    for old, new in state_map.items():
        if new not in target.states:
            raise PayloadInvalid(f"--map {old}={new}: {new!r} is not a state of {target.key}",
                                 fields={"map": f"{old}={new}"})
    changes = []
    with svc.uow() as uow:
        svc.units.refresh(uow.connection)
        for case_id in uow.cases.open_case_ids(name, other_than_version=to_version):
            case = uow.cases.load_by_id(case_id)
            snap = case.snapshot
            new_state = state_map.get(snap.state, snap.state)
            if new_state not in target.states:
                raise PayloadInvalid(
                    f"case {case.number} is in state {snap.state!r}, which {target.key} lacks; "
                    f"add --map {snap.state}=STATE", fields={"map": snap.state})
            now = svc.clock.now()
            moved = replace(snap, version=to_version, state=new_state, escalation_top=target.escalation.top,
                            escalation_level=min(snap.escalation_level, target.escalation.top))
            note = Event("WorkflowMigrated", now, actor.id, actor.role,
                         {"from": f"{name}@{snap.version}", "to": target.key, "from_state": snap.state,
                          "to_state": new_state, "stopped_deadlines": [d.id for d in snap.deadlines
                                                                     if d.state != CASE_LEVEL]})
            # The new version is written with the rest of the decision (it is a column of the snapshot).
            case, events = apply_decision(svc, uow, case, engine.enter_state(moved, actor, now),
                                          extra_events=[note])
            changes.append(change_of(case, events, "migration"))
        uow.commit()
    for ch in changes:
        svc.publish(ch)
    return len(changes)
