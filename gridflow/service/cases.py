"""Use cases: every report, action, timer firing and migration passes through here.

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
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy.exc import IntegrityError, OperationalError

from ..adapters.codec import sla_document, snapshot_of
from ..adapters.db import DatabaseUnavailable
from ..adapters.geo import locate_grid
from ..adapters.repository import CaseRecord
from ..engine.case import Actor, CaseSnapshot, Decision, Event, TimerSpec
from ..engine.errors import GridflowError, PayloadInvalid, RoleNotAllowed, VersionConflict
from ..engine.loader import canonical_json
from .context import Change, Services
from .history import chain_hash
from .unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
REPORTER_ROLES = ("grid_worker", "resident", "hotline_operator", "community_dispatcher", "street_dispatcher",
                  "disaster_officer", "admin", "system")


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


# --- shared machinery -------------------------------------------------------------------------

def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _event_dicts(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
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


def _apply(svc: Services, uow: UnitOfWork, row: CaseRecord, decision: Decision, *, expected_version: int,
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


def _change(row: CaseRecord, events: list[dict[str, Any]], source: str) -> Change:
    return Change(row.number or "", row.workflow, row.state, row.version, _event_dicts(events), row.holder_unit,
                  row.escalation_unit, row.community_code, row.street_code, row.district_code, row.reporter_id,
                  source)


def _db_errors(fn):
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database unavailable or locked, nothing was changed: {exc.orig}",
                                      retry_after=1) from exc

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# --- use cases --------------------------------------------------------------------------------

@_db_errors
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
        row = uow.cases.insert(dict(  # counters, flags and the chain head take the table's defaults
            workflow=defn.name, workflow_version=defn.version, state=defn.initial,
            origin_unit=unit.code, community_code=scope["community"], street_code=scope["street"],
            district_code=scope["district"], category=cmd.category, title=cmd.title,
            description=cmd.description, channel=cmd.channel, lat=cmd.lat, lon=cmd.lon,
            address=cmd.address, reporter_id=cmd.reporter.id, reporter_name=cmd.reporter_name,
            reporter_phone=cmd.reporter_phone, attachments=[dict(a) for a in cmd.attachments],
            resident_token_hash=_hash_token(token) if token else None, opened_at=now, updated_at=now))
        row.number = uow.cases.assign_number(row.id, f"GF-{now.year}-{row.id:06d}")
        decision = engine.open(row.number, cmd.reporter, now, origin_unit=unit.code, holder_unit=holder,
                               data=dict(cmd.data),
                               payload={"category": cmd.category, "channel": cmd.channel, "unit": unit.code})
        version, events = _apply(svc, uow, row, decision, expected_version=0)
        uow.commit()
    svc.publish(_change(row, events, "report"))
    return ActionResult(row.number, row.state, version, _event_dicts(events), resident_token=token)


@_db_errors
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
            row = uow.cases.get(cmd.number)
            if cmd.expected_version is not None and cmd.expected_version != row.version:
                raise VersionConflict(
                    f"case {row.number} is at version {row.version}, not {cmd.expected_version}: it changed "
                    "since you read it; reload and try again", number=row.number, expected=cmd.expected_version,
                    current=row.version)
            svc.units.refresh(uow.connection)
            engine = svc.catalog.engine(row.workflow, row.workflow_version)
            snap = snapshot_of(row, engine.definition.escalation.top)
            decision = engine.act(snap, cmd.action, cmd.actor, cmd.payload, svc.clock.now())
            version, events = _apply(svc, uow, row, decision, expected_version=row.version)
            result = ActionResult(row.number or "", row.state, version, _event_dicts(events))
            if idem_key:
                uow.cases.remember({"key": idem_key, "case_id": row.id, "action": cmd.action,
                                    "request_hash": request_hash, "result": result.as_dict(),
                                    "created_at": svc.clock.now()})
            uow.commit()
    except IntegrityError:
        if idem_key:  # the same key won a race in another transaction: answer as it did
            with svc.uow(write=False) as uow:
                replay = _replay(uow, idem_key, request_hash)
                if replay is not None:
                    return replay
        raise VersionConflict(f"case {cmd.number} changed concurrently; reload it and try again",
                              number=cmd.number) from None
    svc.publish(_change(row, events, "action"))
    return result


def _replay(uow: UnitOfWork, key: str, request_hash: str) -> ActionResult | None:
    prior = uow.cases.idempotency(key)
    if prior is None:
        return None
    if prior.request_hash != request_hash:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request",
                                  key=key.split(":", 1)[1])
    r = prior.result or {}
    return ActionResult(r["number"], r["state"], r["version"], tuple(r.get("events", [])), replayed=True)


@dataclass(frozen=True)
class FireOutcome:
    timer_id: int
    status: str  # fired, stale, missing, failed
    number: str | None = None
    events: tuple[str, ...] = ()
    lateness_s: float | None = None


@_db_errors
def fire_timer(svc: Services, timer_id: int, *, attempts: int = 5) -> FireOutcome:
    """Fire one durable timer through the engine. Idempotent: a missing or stale timer changes nothing."""

    for attempt in range(attempts):
        try:
            return _fire_once(svc, timer_id)
        except (VersionConflict, IntegrityError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@_db_errors
def fire_timers(svc: Services, timer_ids: list[int]) -> list[FireOutcome]:
    """Fire a batch of timers in one transaction (one commit for all), as a worker does.

    If any firing in the batch conflicts with a concurrent change, the whole batch is
    rolled back and each timer is fired on its own instead, so one busy case never holds
    the others back; a timer that fails alone is reported ``failed`` and stays for a retry.
    """

    ids = sorted({int(t) for t in timer_ids})
    try:
        return _fire_batch(svc, ids)
    except (VersionConflict, IntegrityError):
        pass
    outcomes = []
    for timer_id in ids:
        try:
            outcomes.append(fire_timer(svc, timer_id))
        except DatabaseUnavailable:
            raise
        except GridflowError as exc:
            log.error("timer %s failed: %s", timer_id, exc.message, extra={"timer_id": timer_id})
            outcomes.append(FireOutcome(timer_id, "failed", events=(exc.code,)))
    return outcomes


def _fire_batch(svc: Services, ids: list[int]) -> list[FireOutcome]:
    outcomes: list[FireOutcome] = []
    changes: list[Change] = []
    with svc.uow() as uow:
        for timer_id in ids:
            outcome, change = _fire_in(svc, uow, timer_id)
            outcomes.append(outcome)
            if change is not None:
                changes.append(change)
        uow.commit()
    for change in changes:
        svc.publish(change)
    return outcomes


def _fire_in(svc: Services, uow: UnitOfWork, timer_id: int) -> tuple[FireOutcome, Change | None]:
    """One firing inside the caller's transaction."""
    taken = uow.cases.take_timer(timer_id)
    if taken is None:
        return FireOutcome(timer_id, "missing"), None
    key, due_at, row = taken
    engine = svc.catalog.engine(row.workflow, row.workflow_version)
    snap = snapshot_of(row, engine.definition.escalation.top)
    now = svc.clock.now()
    decision = engine.fire(snap, TimerSpec.parse_key(key, due_at), now)
    events: list[dict[str, Any]] = []
    if decision.changed:
        svc.units.refresh(uow.connection)
        _, events = _apply(svc, uow, row, decision, expected_version=row.version)
    outcome = FireOutcome(timer_id, "fired" if events else "stale", row.number, tuple(e["type"] for e in events),
                          max(0.0, (now - due_at).total_seconds()))
    return outcome, (_change(row, events, "timer") if events else None)


def _fire_once(svc: Services, timer_id: int) -> FireOutcome:
    with svc.uow() as uow:
        outcome, change = _fire_in(svc, uow, timer_id)
        uow.commit()
    if change is not None:
        svc.publish(change)
    return outcome


@_db_errors
def claim_due_timers(svc: Services, runner: str, limit: int | None = None) -> list[tuple[int, datetime]]:
    with svc.uow() as uow:
        claimed = uow.cases.claim_due(svc.clock.now(), limit or svc.settings.timer_batch_size, runner,
                                      svc.settings.timer_claim_seconds)
        uow.commit()
    return claimed


@_db_errors
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
            row = uow.cases.get_by_id(case_id)
            old_engine = svc.catalog.engine(row.workflow, row.workflow_version)
            snap = snapshot_of(row, old_engine.definition.escalation.top)
            new_state = state_map.get(snap.state, snap.state)
            if new_state not in target.states:
                raise PayloadInvalid(
                    f"case {row.number} is in state {snap.state!r}, which {target.key} lacks; "
                    f"add --map {snap.state}=STATE", fields={"map": snap.state})
            now = svc.clock.now()
            moved = replace(snap, version=to_version, state=new_state, escalation_top=target.escalation.top,
                            escalation_level=min(snap.escalation_level, target.escalation.top))
            note = Event("WorkflowMigrated", now, actor.id, actor.role,
                         {"from": f"{name}@{snap.version}", "to": target.key, "from_state": snap.state,
                          "to_state": new_state, "stopped_deadlines": [d.id for d in snap.deadlines]})
            # The new version is written with the rest of the decision (it is a column of the snapshot).
            _, events = _apply(svc, uow, row, engine.enter_state(moved, actor, now), expected_version=row.version,
                               extra_events=[note])
            changes.append(_change(row, events, "migration"))
        uow.commit()
    for ch in changes:
        svc.publish(ch)
    return len(changes)
