"""Intake: where every channel hands in a report (the API, the CLI, the demo; hotline files, Open311 and
webhooks when they come) — a ``ReportCase`` in, a numbered case on the newest version of its workflow out.

One unit of work: file the case where its place says it belongs (属地), let the engine open it, write
its first events, timers and notifications; a channel never writes to the database itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..adapters.geo import locate_grid
from ..adapters.ports import NewCase
from ..engine.case import Actor
from ..engine.errors import GridflowError, PayloadInvalid, RoleNotAllowed
from ..engine.payload import PAYLOAD_BOUNDS, check_json, clean_attachments
from ..engine.guards import resident_identity
from ..engine.roles import REPORTER_ROLES, STAFF_ROLES
from .context import Services
from .masking import mask_name
from .recording import ActionResult, apply_decision, change_of, db_errors, event_dicts
from .tokens import hash_token, new_token


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
    #: 举报人保密: the reporter's identity is shown to no handling unit (see :mod:`.masking`). Kept in the
    #: case data (``data["confidential"]``), which is stored with the case's snapshot.
    confidential: bool = False
    #: A channel's delivery id (e.g. ``intake:<source>:<webhook-id>``): a report with a key already seen
    #: files nothing and answers the case it filed (``replayed``); ``request_hash`` tells a different
    #: report sent under the same key (refused).
    idempotency_key: str | None = None
    request_hash: str = ""


@db_errors
def report_case(svc: Services, cmd: ReportCase) -> ActionResult:
    """Open a case on the newest version of its workflow."""
    defn = svc.catalog.newest(cmd.workflow)
    engine = svc.catalog.engine(defn.name, defn.version)
    if cmd.reporter.role not in REPORTER_ROLES:
        raise RoleNotAllowed(f"role {cmd.reporter.role!r} may not report cases", role=cmd.reporter.role)
    attachments = tuple(clean_attachments(cmd.attachments))  # whatever the channel: metadata only
    check_json(dict(cmd.data), PAYLOAD_BOUNDS, "data", what="the report's data")
    now = svc.clock.now()
    with svc.uow() as uow:
        if cmd.idempotency_key and (prior := _prior(uow, cmd)) is not None:
            return prior
        svc.units.refresh(uow.connection)
        unit_code = _place_of(svc, cmd)
        unit = svc.units.get(unit_code)
        if unit is None:
            raise PayloadInvalid(
                "cannot tell which grid or community the case belongs to: give a known unit code or "
                "coordinates inside a grid",
                fields={"unit": f"unknown unit {unit_code!r}" if unit_code else "missing"})
        community = svc.units.ancestor_of_kind(unit.code, "community")
        holder = community.code if community else unit.code
        scope = svc.units.scope_codes(unit.code)
        token = new_token() if cmd.reporter.role == "resident" or cmd.reporter_phone else None
        filed = uow.cases.add(NewCase(
            workflow=defn.name, version=defn.version, state=defn.initial, origin_unit=unit.code,
            community_code=scope["community"], street_code=scope["street"], district_code=scope["district"],
            opened_at=now, reporter_id=cmd.reporter.id, category=cmd.category, title=cmd.title,
            description=cmd.description, channel=cmd.channel, lat=cmd.lat, lon=cmd.lon, address=cmd.address,
            reporter_name=cmd.reporter_name, reporter_phone=cmd.reporter_phone, attachments=attachments,
            resident_token_hash=hash_token(token) if token else None), lambda id_: f"GF-{now.year}-{id_:06d}")
        decision = engine.open(filed.number, cmd.reporter, now, origin_unit=unit.code, holder_unit=holder,
                               data={**cmd.data, **({"confidential": True} if cmd.confidential else {})},
                               payload={"category": cmd.category, "channel": cmd.channel, "unit": unit.code},
                               reported=_reported_facts(cmd, filed.number))
        case, events = apply_decision(svc, uow, filed, decision)
        if cmd.idempotency_key:
            uow.cases.remember(cmd.idempotency_key, case, "report", cmd.request_hash,
                               {"number": case.number, "state": case.snapshot.state, "version": case.version},
                               now)
        uow.commit()
    svc.publish(change_of(case, events, "report"))
    return ActionResult(case.number, case.snapshot.state, case.version, event_dicts(events),
                        resident_token=token)


def _prior(uow, cmd: ReportCase) -> ActionResult | None:
    prior = uow.cases.prior_result(cmd.idempotency_key)
    if prior is None:
        return None
    if prior.request_hash != cmd.request_hash:
        raise ReportKeyReused("this delivery id was already used for a different report",
                              key=cmd.idempotency_key)
    r = prior.result
    return ActionResult(r["number"], r["state"], r["version"], (), replayed=True)


class ReportKeyReused(GridflowError):
    code = "idempotency_key_reused"
    status = 422


def _place_of(svc: Services, cmd: ReportCase) -> str | None:
    """Where the problem is decides who owns it (属地): an explicit unit, else the grid the coordinates fall
    in; a point outside every grid goes to the triage pool of the street it lies in, else of the district
    (the one it lies in, else the reporter's); without coordinates, the reporter's own unit."""
    if cmd.unit is not None:
        return cmd.unit
    if cmd.lat is None or cmd.lon is None:
        return cmd.reporter.unit
    units = svc.units.all()
    for kind in ("grid", "street", "district"):
        found = locate_grid(units, cmd.lat, cmd.lon, kind)
        if found is not None:
            return found
    district = svc.units.ancestor_of_kind(cmd.reporter.unit, "district")
    return district.code if district is not None else cmd.reporter.unit


def _reported_facts(cmd: ReportCase, number: str) -> dict[str, Any]:
    """The channel, and — when a staff member (a hotline operator, a grid worker) logs the report for a
    resident — on whose behalf: the resident's own identity for this case (the one its token acts as) and
    the contact's name, masked as everywhere else. The staff member stays the one who reported it."""
    facts: dict[str, Any] = {"channel": cmd.channel}
    if cmd.reporter.role in STAFF_ROLES and (cmd.reporter_name or cmd.reporter_phone):
        facts["on_behalf_of"] = resident_identity(number)
        if cmd.reporter_name:
            facts["on_behalf_of_name"] = mask_name(cmd.reporter_name)
    return facts
