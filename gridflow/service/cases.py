"""Use cases: every report, action and migration passes through here (timer firings: ``timers``).

Each is one unit of work: load the case, ask the engine, append the events
(hash-chained), update the case with a compare-and-set on its version,
schedule and cancel timers, queue side effects in the outbox, commit — or
leave everything exactly as it was.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import sqlalchemy as sa

from ..adapters.geo import locate_grid
from ..adapters.orm import CaseRow
from ..adapters.ports import NewCase, UnitOfWork
from ..engine.canonical import canonical_json
from ..engine.case import Actor, Event
from ..engine.errors import (
    CaseNotFound, ConcurrentWrite, Forbidden, GridflowError, PayloadInvalid, RoleNotAllowed, VersionConflict,
)
from ..engine.roles import REPORTER_ROLES, STAFF_ROLES
from .auth import Caller
from .context import Services
from .recording import apply_decision, change_of, db_errors, event_dicts, hash_token
from .scopes import FACT_COLUMNS, Seen, SeenCases, scope_of

log = logging.getLogger(__name__)


class IdempotencyConflict(GridflowError):
    code = "idempotency_key_reused"
    status = 422


# --- commands and results ---------------------------------------------------------------------

@dataclass(frozen=True)
class ReportCase:
    workflow: str
    reporter: Actor
    category: str = ""
    title: str = ""
    description: str = ""
    unit: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    attachments: tuple[Mapping[str, Any], ...] = ()
    channel: str = "api"
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TakeAction:
    number: str
    action: str
    actor: Actor
    payload: Mapping[str, Any] = field(default_factory=dict)
    expected_version: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ActionResult:
    number: str
    state: str
    version: int
    events: tuple[dict[str, Any], ...]
    replayed: bool = False
    resident_token: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "version": self.version, "events": list(self.events)}


# --- use cases --------------------------------------------------------------------------------

@db_errors
def report_case(svc: Services, cmd: ReportCase) -> ActionResult:
    """Open a case on the newest version of its workflow."""
    defn = svc.catalog.newest(cmd.workflow)
    engine = svc.catalog.engine(defn.name, defn.version)
    if cmd.reporter.role not in REPORTER_ROLES:
        raise RoleNotAllowed(f"role {cmd.reporter.role!r} may not report cases", role=cmd.reporter.role)
    now = svc.clock.now()
    with svc.uow() as uow:
        svc.units.refresh(uow.connection)
        # Where the problem is decides who owns it (属地): an explicit unit, else the grid the
        # coordinates fall in, else the reporter's own unit.
        unit_code = cmd.unit
        if unit_code is None and cmd.lat is not None and cmd.lon is not None:
            unit_code = locate_grid(svc.units.all(), cmd.lat, cmd.lon)
        unit_code = unit_code or cmd.reporter.unit
        unit = svc.units.get(unit_code)
        if unit is None:
            raise PayloadInvalid(
                "cannot tell which grid or community the case belongs to: give a known unit code or "
                "coordinates inside a grid", fields={"unit": f"unknown unit {unit_code!r}" if unit_code else "missing"})
        community = svc.units.ancestor_of_kind(unit.code, "community")
        holder = community.code if community else unit.code
        scope = svc.units.scope_codes(unit.code)
        token = secrets.token_urlsafe(24) if cmd.reporter.role == "resident" or cmd.reporter_phone else None
        filed = uow.cases.add(NewCase(
            workflow=defn.name, version=defn.version, state=defn.initial, origin_unit=unit.code,
            community_code=scope["community"], street_code=scope["street"], district_code=scope["district"],
            opened_at=now, reporter_id=cmd.reporter.id, category=cmd.category, title=cmd.title,
            description=cmd.description, channel=cmd.channel, lat=cmd.lat, lon=cmd.lon, address=cmd.address,
            reporter_name=cmd.reporter_name, reporter_phone=cmd.reporter_phone, attachments=cmd.attachments,
            resident_token_hash=hash_token(token) if token else None), lambda id_: f"GF-{now.year}-{id_:06d}")
        decision = engine.open(filed.number, cmd.reporter, now, origin_unit=unit.code, holder_unit=holder,
                               data=dict(cmd.data),
                               payload={"category": cmd.category, "channel": cmd.channel, "unit": unit.code})
        case, events = apply_decision(svc, uow, filed, decision)
        uow.commit()
    svc.publish(change_of(case, events, "report"))
    return ActionResult(case.number, case.snapshot.state, case.version, event_dicts(events),
                        resident_token=token)


@db_errors
def take_action(svc: Services, cmd: TakeAction) -> ActionResult:
    """Take an action on a case; refused actions change nothing."""
    request_hash = hashlib.sha256(canonical_json(
        {"number": cmd.number, "action": cmd.action, "payload": dict(cmd.payload)}).encode()).hexdigest() \
        if cmd.idempotency_key else ""
    idem_key = f"{cmd.actor.id}:{cmd.idempotency_key}" if cmd.idempotency_key else None
    if idem_key and len(idem_key) > 200:
        raise PayloadInvalid("Idempotency-Key is too long (at most 160 characters)")
    try:
        with svc.uow() as uow:
            if idem_key:
                replay = _replay(uow, idem_key, request_hash)
                if replay is not None:
                    return replay
            case = uow.cases.load(cmd.number)
            if cmd.expected_version is not None and cmd.expected_version != case.version:
                raise VersionConflict(
                    f"case {case.number} is at version {case.version}, not {cmd.expected_version}: it "
                    "changed since you read it; reload and try again", number=case.number,
                    expected=cmd.expected_version, current=case.version)
            svc.units.refresh(uow.connection)
            snap = case.snapshot
            engine = svc.catalog.engine(snap.workflow, snap.version)
            decision = engine.act(snap, cmd.action, cmd.actor, cmd.payload, svc.clock.now())
            case, events = apply_decision(svc, uow, case, decision)
            result = ActionResult(case.number, case.snapshot.state, case.version, event_dicts(events))
            if idem_key:
                uow.cases.remember(idem_key, case, cmd.action, request_hash, result.as_dict(),
                                   svc.clock.now())
            uow.commit()
    except ConcurrentWrite:
        if idem_key:  # the same key won a race in another transaction: answer as it did
            with svc.uow(write=False) as uow:
                replay = _replay(uow, idem_key, request_hash)
                if replay is not None:
                    return replay
        raise VersionConflict(f"case {cmd.number} changed concurrently; reload it and try again",
                              number=cmd.number) from None
    svc.publish(change_of(case, events, "action"))
    return result


def _replay(uow: UnitOfWork, key: str, request_hash: str) -> ActionResult | None:
    prior = uow.cases.prior_result(key)
    if prior is None:
        return None
    if prior.request_hash != request_hash:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request",
                                  key=key.split(":", 1)[1])
    r = prior.result
    return ActionResult(r["number"], r["state"], r["version"], tuple(r.get("events", [])), replayed=True)


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
                          "to_state": new_state, "stopped_deadlines": [d.id for d in snap.deadlines]})
            # The new version is written with the rest of the decision (it is a column of the snapshot).
            case, events = apply_decision(svc, uow, case, engine.enter_state(moved, actor, now),
                                          extra_events=[note])
            changes.append(change_of(case, events, "migration"))
        uow.commit()
    for ch in changes:
        svc.publish(ch)
    return len(changes)


# --- acting for a caller ----------------------------------------------------------------------

def act_as(svc: Services, caller: Caller, number: str, action: str,
           payload: Mapping[str, Any] | None = None, *, expected_version: int | None = None,
           idempotency_key: str | None = None, seen_cases: SeenCases | None = None) -> ActionResult:
    """Take an action for a caller, who must be able to see the case.

    The action is pinned to the version the scope was checked on, so a case that
    changed hands in between is refused as a conflict rather than acted on.
    """
    if caller.role not in STAFF_ROLES and caller.role != "resident":
        raise Forbidden(f"role {caller.role!r} may not act on cases")
    cached = seen_cases.get(number) if seen_cases is not None else None
    if cached is not None and expected_version in (None, cached.version) \
            and scope_of(svc, caller).contains(cached.facts):
        try:
            return _act(svc, caller, cached, number, action, payload, idempotency_key)
        except VersionConflict:
            seen_cases.forget(number)
            if expected_version is not None:
                raise
    seen = _visible(svc, caller, number, seen_cases)
    if expected_version is not None and expected_version != seen.version:
        # Pinned to the version the caller expects, so that take_action answers 409.
        seen = Seen(expected_version, seen.workflow, seen.workflow_version, seen.facts)
    return _act(svc, caller, seen, number, action, payload, idempotency_key)


def _visible(svc: Services, caller: Caller, number: str, seen_cases: SeenCases | None = None) -> Seen:
    """A case the caller may see, as it is now; otherwise it does not exist for them (404)."""
    cols = [getattr(CaseRow, c) for c in FACT_COLUMNS]
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.connection)
        row = uow.connection.execute(
            sa.select(CaseRow.version, CaseRow.workflow, CaseRow.workflow_version, *cols)
            .where(CaseRow.number == number, scope_of(svc, caller).sql())).first()
    if row is None:
        raise CaseNotFound(f"no case {number!r}", number=number)
    seen = Seen(row[0], row[1], row[2], dict(zip(FACT_COLUMNS, row[3:])))
    if seen_cases is not None:
        seen_cases.remember(number, seen)
    return seen


def _act(svc: Services, caller: Caller, seen: Seen, number: str, action: str,
         payload: Mapping[str, Any] | None, idempotency_key: str | None) -> ActionResult:
    act = svc.catalog.get(seen.workflow, seen.workflow_version).actions.get(action)
    if act is not None and payload:
        _check_references(svc, act, payload)
    # A retried request with an Idempotency-Key is answered from its first result before any version check.
    return take_action(svc, TakeAction(number, action, caller.actor, dict(payload or {}),
                                       expected_version=seen.version, idempotency_key=idempotency_key))


def _check_references(svc: Services, act: Any, payload: Mapping[str, Any]) -> None:
    """Units and cases an action's payload names must exist, or the case would be handed to nobody."""
    named = [(f, payload[f.name].strip()) for f in act.fields if f.type in ("unit", "case")
             and isinstance(payload.get(f.name), str) and payload[f.name].strip()]
    problems: dict[str, str] = {}
    for f, value in named:
        if f.type == "unit" and svc.units.get(value) is None:
            with svc.uow(write=False) as uow:  # perhaps created since the tree was loaded
                svc.units.refresh(uow.connection, force=True)
            if svc.units.get(value) is None:
                problems[f.name] = f"unknown unit {value!r}"
        elif f.type == "case":
            with svc.uow(write=False) as uow:
                found = uow.connection.execute(sa.select(CaseRow.id).where(CaseRow.number == value)).first()
                if found is None:
                    problems[f.name] = f"unknown case {value!r}"
    if problems:
        raise PayloadInvalid(f"payload for {act.name!r} names what does not exist: "
                             + "; ".join(f"{k}: {v}" for k, v in problems.items()), action=act.name,
                             fields=problems)
