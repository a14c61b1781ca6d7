"""Intake: where every channel hands in a report (the API, the CLI, the demo; hotline files, Open311 and
webhooks when they come) — a ``ReportCase`` in, a numbered case on the newest version of its workflow out.

One unit of work: file the case where its place says it belongs (属地), let the engine open it, write
its first events, timers and notifications; a channel never writes to the database itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from ..adapters.ports import NewCase
from ..engine.case import Actor
from ..engine.categories import CATEGORY_LIMITS_KEY, Category
from ..engine.duplicates import DuplicateRules, Report, bounding_box, rank
from ..engine.errors import GridflowError, PayloadInvalid, RoleNotAllowed
from ..engine.payload import PAYLOAD_BOUNDS, check_json, clean_attachments
from ..engine.guards import resident_identity
from ..engine.roles import REPORTER_ROLES, STAFF_ROLES
from .categories import category_of
from .context import Services
from .masking import mask_name
from .recording import ActionResult, apply_decision, change_of, db_errors, event_dicts
from .tokens import hash_token, new_token


@dataclass(frozen=True)
class ReportCase:
    #: None (or ""): the default workflow of the report's category (docs/categories.md).
    workflow: str | None
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
    """Open a case on the newest version of its workflow (by default its category's)."""
    category = category_of(svc.categories, cmd.category)
    defn = svc.catalog.newest(cmd.workflow or category.workflow)
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
        unit_code, located = _place_of(svc, cmd)
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
        candidates = possible_duplicates(svc, uow, cmd, now)
        filed = uow.cases.add(NewCase(
            workflow=defn.name, version=defn.version, state=defn.initial, origin_unit=unit.code,
            community_code=scope["community"], street_code=scope["street"], district_code=scope["district"],
            opened_at=now, reporter_id=cmd.reporter.id, category=cmd.category, title=cmd.title,
            description=cmd.description, channel=cmd.channel, lat=cmd.lat, lon=cmd.lon, address=cmd.address,
            reporter_name=cmd.reporter_name, reporter_phone=cmd.reporter_phone, attachments=attachments,
            resident_token_hash=hash_token(token) if token else None), lambda id_: f"GF-{now.year}-{id_:06d}")
        flags = {"duplicate_candidates": candidates} if candidates else {}
        decision = engine.open(filed.number, cmd.reporter, now, origin_unit=unit.code, holder_unit=holder,
                               data={**_case_data(cmd, category), **flags},
                               payload={"category": cmd.category, "channel": cmd.channel, "unit": unit.code},
                               reported={**_reported_facts(cmd, filed.number), **located, **flags})
        case, events = apply_decision(svc, uow, filed, decision)
        if cmd.idempotency_key:
            uow.cases.remember(cmd.idempotency_key, case, "report", cmd.request_hash,
                               {"number": case.number, "state": case.snapshot.state, "version": case.version},
                               now)
        uow.commit()
    svc.publish(change_of(case, events, "report"))
    return ActionResult(case.number, case.snapshot.state, case.version, event_dicts(events),
                        resident_token=token)


def duplicate_rules(svc: Services) -> DuplicateRules:
    s = svc.settings
    return DuplicateRules(radius_m=s.duplicate_radius_m, window=timedelta(hours=s.duplicate_window_hours),
                          phone_window=timedelta(days=s.duplicate_phone_window_days))


def possible_duplicates(svc: Services, uow, cmd: ReportCase, now: datetime) -> list[dict[str, Any]]:
    """The open cases this report may repeat (重复件), best first, each with why: flagged at triage (the
    case data's ``duplicate_candidates`` and its ``CaseReported`` entry), never merged automatically."""
    rules = duplicate_rules(svc)
    near = rules.by_place and bool(cmd.category) and cmd.lat is not None and cmd.lon is not None
    phone = cmd.reporter_phone if rules.by_phone else None
    if not near and not phone:
        return []
    found = uow.cases.open_cases_like(
        category=cmd.category, since=now - rules.window if near else None,
        box=bounding_box(cmd.lat, cmd.lon, rules.radius_m) if near else None,  # type: ignore[arg-type]
        phone=phone, phone_since=now - rules.phone_window if phone else None)
    new = Report(cmd.category, now, cmd.lat, cmd.lon, cmd.reporter_phone)
    return [c.as_dict() for c in rank(new, found, rules)]


def workflow_of(svc: Services, cmd_workflow: str | None, category: str | None) -> str:
    """The workflow a report opens: the one it names, else its category's default (422 for a category the
    catalogue does not know, naming the closest codes)."""
    return cmd_workflow or category_of(svc.categories, category).workflow


def _case_data(cmd: ReportCase, category: Category) -> dict[str, Any]:
    """The report's data, with the category's limits as filed (the engine reads its timers' lengths from
    them, so later catalogue changes leave the case alone) — never a channel's own say on them."""
    data = {k: v for k, v in cmd.data.items() if k != CATEGORY_LIMITS_KEY}
    if category.limits:
        data[CATEGORY_LIMITS_KEY] = category.limit_texts()
    if cmd.confidential:
        data["confidential"] = True
    return data


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


def _place_of(svc: Services, cmd: ReportCase) -> tuple[str | None, dict[str, Any]]:
    """Where the problem is decides who owns it (属地), and how that was found goes into the history
    (``located_by``): the unit the report names (``unit``); else the grid its coordinates fall in
    (``point``: a point in no grid but inside a street or district with a boundary goes to that unit's
    triage pool); else the place its address text names (``address``: the address table, then the
    units' names); without coordinates or address, the reporter's own unit (``reporter``); else the
    triage pool (``none``) of the reporter's district, or of the organisation's district — never refused."""
    if cmd.unit is not None:
        return cmd.unit, {"located_by": "unit"}
    if cmd.lat is not None and cmd.lon is not None:
        found = svc.units.locate_point(cmd.lat, cmd.lon)
        if found is not None:
            return found[0], {"located_by": "point", "located_in": found[1]}
    by_address = svc.units.locate_address(cmd.address)
    if by_address is not None:
        return by_address.code, {"located_by": "address", "located_in": by_address.kind}
    if (cmd.lat is None or cmd.lon is None) and cmd.reporter.unit is not None:
        return cmd.reporter.unit, {"located_by": "reporter"}
    return _triage_pool(svc, cmd.reporter.unit), {"located_by": "none"}


def _triage_pool(svc: Services, reporter_unit: str | None) -> str | None:
    """The district a report no place was found for is triaged in: the reporter's, else the first
    district in service (an anonymous report in a one-district installation: that district)."""
    district = svc.units.ancestor_of_kind(reporter_unit, "district")
    if district is not None:
        return district.code
    live = sorted(u.code for u in svc.units.all() if u.kind == "district" and not u.retired)
    return live[0] if live else reporter_unit


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
