"""Actions: every dispatch, sign-for, reply, rating, review… that a person takes on a case.

``take_action`` is the use case (one unit of work; refused actions change nothing; ``If-Match`` and
``Idempotency-Key`` honoured); ``act_as`` is the same for an authenticated caller, with the scope
checks an entry point needs: the case and every case or unit the payload names must be the caller's.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlalchemy as sa

from ..adapters.orm import CaseRow
from ..adapters.ports import UnitOfWork
from ..engine.canonical import canonical_json
from ..engine.case import Actor
from ..engine.errors import (
    CaseNotFound, ConcurrentWrite, Forbidden, GridflowError, PayloadInvalid, VersionConflict,
)
from ..engine.roles import STAFF_ROLES
from .auth import Caller
from .context import Services
from .organisation import resolve_unit_names
from .recording import ActionResult, apply_decision, change_of, db_errors, event_dicts
from .scopes import FACT_COLUMNS, Seen, SeenCases, may_name_unit, scope_of

log = logging.getLogger(__name__)


class IdempotencyConflict(GridflowError):
    code = "idempotency_key_reused"
    status = 422


@dataclass(frozen=True)
class TakeAction:
    number: str
    action: str
    actor: Actor
    payload: Mapping[str, Any] = field(default_factory=dict)
    expected_version: int | None = None
    idempotency_key: str | None = None


# --- the use case ------------------------------------------------------------------------------

@db_errors
def take_action(svc: Services, cmd: TakeAction) -> ActionResult:
    """Take an action on a case; refused actions change nothing."""
    request_hash = hashlib.sha256(canonical_json(
        {"number": cmd.number, "action": cmd.action, "payload": dict(cmd.payload)}).encode()).hexdigest() \
        if cmd.idempotency_key else ""
    # Scoped to the identity that sent it: a resident acting with its case token is ``resident:<number>``,
    # never the staff member who logged the case, so neither can replay the other's request.
    idem_key = f"{cmd.actor.id}:{cmd.idempotency_key}" if cmd.idempotency_key else None
    if idem_key and len(idem_key) > 200:
        raise PayloadInvalid("Idempotency-Key is too long (at most 160 characters)")
    try:
        with svc.uow() as uow:
            if idem_key:
                replay = _replay(uow, idem_key, request_hash, cmd.idempotency_key)
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
                replay = _replay(uow, idem_key, request_hash, cmd.idempotency_key)
                if replay is not None:
                    return replay
        raise VersionConflict(f"case {cmd.number} changed concurrently; reload it and try again",
                              number=cmd.number) from None
    svc.publish(change_of(case, events, "action"))
    return result


def _replay(uow: UnitOfWork, key: str, request_hash: str, client_key: str | None) -> ActionResult | None:
    prior = uow.cases.prior_result(key)
    if prior is None:
        return None
    if prior.request_hash != request_hash:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request",
                                  key=client_key)
    r = prior.result
    return ActionResult(r["number"], r["state"], r["version"], tuple(r.get("events", [])), replayed=True)


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
        payload = resolve_unit_names(svc, act.fields, payload)  # 住建局 → dept-housing
        _check_references(svc, caller, act, payload)
    # A retried request with an Idempotency-Key is answered from its first result before any version check.
    return take_action(svc, TakeAction(number, action, caller.actor, dict(payload or {}),
                                       expected_version=seen.version, idempotency_key=idempotency_key))


def _check_references(svc: Services, caller: Caller, act: Any, payload: Mapping[str, Any]) -> None:
    """Units and cases an action's payload names must exist and be the caller's to name — a case in its
    scope, a unit it may hand work to (:func:`~.scopes.may_name_unit`) — or the case would be handed to
    nobody, or to someone else's area. One out of reach is refused exactly as an unknown one (same status,
    code and message), so what lies outside a caller's scope cannot be probed."""
    named = [(f, payload[f.name].strip()) for f in act.fields if f.type in ("unit", "case")
             and isinstance(payload.get(f.name), str) and payload[f.name].strip()]
    problems: dict[str, str] = {}
    for f, value in named:
        if f.type == "unit" and not _unit_in_reach(svc, caller, value):
            problems[f.name] = f"unknown unit {value!r}"
        elif f.type == "unit" and _retired(svc, value):
            problems[f.name] = f"unit {value!r} is retired (撤销)"
        elif f.type == "case" and not _case_in_scope(svc, caller, value):
            problems[f.name] = f"unknown case {value!r}"
    for f in act.fields:  # lists of units (co-handlers, participants): each one as a single unit
        values = payload.get(f.name) if f.type == "units" else None
        if isinstance(values, (list, tuple)):
            unknown = [v.strip() for v in values if isinstance(v, str) and v.strip()
                       and not _unit_in_reach(svc, caller, v.strip())]
            retired = [v.strip() for v in values if isinstance(v, str) and v.strip() not in unknown
                       and _retired(svc, v.strip())]
            if unknown:
                problems[f.name] = "unknown unit" + ("s " if len(unknown) > 1 else " ") + \
                    ", ".join(repr(v) for v in unknown)
            elif retired:
                problems[f.name] = ", ".join(repr(v) for v in retired) + " retired (撤销)"
    if problems:
        raise PayloadInvalid(f"payload for {act.name!r} names what does not exist: "
                             + "; ".join(f"{k}: {v}" for k, v in problems.items()), action=act.name,
                             fields=problems)


def _unit_in_reach(svc: Services, caller: Caller, code: str) -> bool:
    if svc.units.get(code) is None:
        with svc.uow(write=False) as uow:  # perhaps created since the tree was loaded
            svc.units.refresh(uow.connection, force=True)
    return svc.units.get(code) is not None and may_name_unit(svc, caller, code)


def _retired(svc: Services, code: str) -> bool:
    """Gone from the organisation files: it keeps the cases it has, and is handed no new one."""
    unit = svc.units.get(code)
    return unit is not None and unit.retired


def _case_in_scope(svc: Services, caller: Caller, number: str) -> bool:
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.connection)
        found = uow.connection.execute(sa.select(CaseRow.id).where(
            CaseRow.number == number, scope_of(svc, caller).sql())).first()
    return found is not None
