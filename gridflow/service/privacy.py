"""Residents' privacy: who may see which case, and which of a resident's personal data they see.

One scope rule per caller serves every read: it is turned into a SQL condition
for lists, worklists and statistics, and checked in Python against the facts
of a live change for event streams, so the two can never disagree.

- admin: every case; a supervisor, dispatcher or hotline operator: the cases
  located in its unit's area (city, district, street, community or grid);
- department handler: only the cases its unit holds right now;
- grid worker: its grid's cases and the ones it reported;
- resident: the cases it reported — with the token it got when reporting, only that case.

Names, phone numbers and exact addresses (and exact coordinates) are shown only
to roles that must contact or visit the resident; exports always mask them.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import CaseRow
from ..engine.case import Actor
from ..engine.errors import CaseNotFound, Forbidden, GridflowError, PayloadInvalid, VersionConflict
from ..engine.roles import CONTACT_ROLES, STAFF_ROLES
from .admin import hash_key, user_for_token
from .cases import ActionResult, TakeAction, take_action
from .context import Services


class Unauthorized(GridflowError):
    code = "unauthorized"
    status = 401


@dataclass(frozen=True)
class Caller:
    """Who is asking: a user with an API key, or a resident holding the token of one case."""

    id: str
    role: str
    unit: str | None = None
    name: str = ""
    #: Set when the caller used a resident's case token: the one case it opens.
    case_number: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.role, self.unit)

    @classmethod
    def operator(cls) -> "Caller":
        """The command line on the server: sees everything, with contact details masked."""
        return cls("cli", "admin", None, "gridflow CLI")


def authenticate(svc: Services, token: str | None) -> Caller:
    """The caller an API key or a resident's case token stands for; 401 otherwise."""
    if not token:
        raise Unauthorized("no credentials: send an API key as X-API-Key or Authorization: Bearer <token>")
    user = user_for_token(svc, token)
    if user is not None:
        return Caller(user.id, user.role, user.unit_code, user.name)
    with svc.uow(write=False) as uow:
        row = uow.session.exec(select(CaseRow.number, CaseRow.reporter_id)
                               .where(CaseRow.resident_token_hash == hash_key(token))).first()
    if row is None:
        raise Unauthorized("unknown or revoked credentials")
    number, reporter = row
    return Caller(reporter or f"case:{number}", "resident", None, "", number)


# --- scope --------------------------------------------------------------------------------------

#: Which case column places a case in the area of a unit of each kind.
AREA_COLUMN = {"district": "district_code", "street": "street_code", "community": "community_code",
               "grid": "origin_unit", "department": "holder_unit"}


@dataclass(frozen=True)
class Scope:
    """A case is in scope when any term matches: ``column`` holds one of ``values``."""

    everything: bool = False
    terms: tuple[tuple[str, frozenset[str]], ...] = ()

    def sql(self) -> Any:
        if self.everything:
            return sa.true()
        conds = [getattr(CaseRow, col) == next(iter(values)) if len(values) == 1 else
                 getattr(CaseRow, col).in_(sorted(values)) for col, values in self.terms if values]
        return sa.or_(*conds) if conds else sa.false()

    def contains(self, facts: Mapping[str, Any], fetch: Callable[[str], Any] | None = None) -> bool:
        """Check a case's facts; ``fetch(column)`` supplies a column the facts lack (e.g. a live change's grid)."""
        if self.everything:
            return True
        for col, values in self.terms:
            if col in facts:
                value = facts[col]
            elif fetch is not None:
                value = fetch(col)
            else:
                continue
            if value is not None and value in values:
                return True
        return False


def _area(svc: Services, unit_code: str | None) -> tuple[tuple[str, frozenset[str]], ...]:
    unit = svc.units.get(unit_code)
    if unit is None:
        return ()
    if unit.kind == "city":
        districts = frozenset(u.code for u in svc.units.all()
                              if u.kind == "district" and svc.units.is_within(u.code, unit.code))
        return (("district_code", districts),)
    col = AREA_COLUMN.get(unit.kind)
    return ((col, frozenset({unit.code})),) if col else ()


def scope_of(svc: Services, caller: Caller) -> Scope:
    if caller.case_number is not None:
        return Scope(terms=(("number", frozenset({caller.case_number})),))
    if caller.role == "admin":
        return Scope(everything=True)
    own = (("reporter_id", frozenset({caller.id})),)
    if caller.role == "resident":
        return Scope(terms=own)
    if caller.role == "department_handler":
        return Scope(terms=(("holder_unit", frozenset({caller.unit})),) if caller.unit else ())
    if caller.unit is not None and svc.units.get(caller.unit) is None:  # a unit created since the last load
        with svc.uow(write=False) as uow:
            svc.units.refresh(uow.session, force=True)
    return Scope(terms=_area(svc, caller.unit) + own)


#: The case columns a scope rule can test.
FACT_COLUMNS = ("number", "holder_unit", "community_code", "street_code", "district_code", "reporter_id",
                "origin_unit")


@dataclass(frozen=True)
class Seen:
    """A case as last seen: its version, its workflow version and the facts its scope depends on."""

    version: int
    workflow: str
    workflow_version: int
    facts: Mapping[str, Any]


class SeenCases:
    """The scope facts of recently seen cases, by version, so an action needs no extra read to check scope.

    Safe because every change to a case bumps its version and :func:`act_as` pins
    the action to the version it checked: a stale entry can only end in a version
    conflict (then the case is read again), never in an action outside the scope.
    Kept current by :meth:`on_change` (a :class:`Services` listener) in this process.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._entries: dict[str, Seen] = {}
        self._lock = threading.Lock()

    def get(self, number: str) -> Seen | None:
        return self._entries.get(number)

    def remember(self, number: str, seen: Seen) -> None:
        with self._lock:
            if len(self._entries) >= self.size and number not in self._entries:
                self._entries.pop(next(iter(self._entries)))  # the oldest entry
            self._entries[number] = seen

    def forget(self, number: str) -> None:
        with self._lock:
            self._entries.pop(number, None)

    def on_change(self, change: Any) -> None:
        old = self._entries.get(change.number)
        if old is None or change.source == "migration":
            self.forget(change.number)
            return
        self.remember(change.number, Seen(change.version, old.workflow, old.workflow_version,
                                          {**old.facts, **change_facts(change)}))


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


def act_as(svc: Services, caller: Caller, number: str, action: str, payload: Mapping[str, Any] | None = None, *,
           expected_version: int | None = None, idempotency_key: str | None = None,
           seen_cases: SeenCases | None = None) -> ActionResult:
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
        seen = Seen(expected_version, seen.workflow, seen.workflow_version, seen.facts)  # take_action says 409
    return _act(svc, caller, seen, number, action, payload, idempotency_key)


def _act(svc: Services, caller: Caller, seen: Seen, number: str, action: str, payload: Mapping[str, Any] | None,
         idempotency_key: str | None) -> ActionResult:
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
                if uow.connection.execute(sa.select(CaseRow.id).where(CaseRow.number == value)).first() is None:
                    problems[f.name] = f"unknown case {value!r}"
    if problems:
        raise PayloadInvalid(f"payload for {act.name!r} names what does not exist: "
                             + "; ".join(f"{k}: {v}" for k, v in problems.items()), action=act.name,
                             fields=problems)


def reporter_of(caller: Caller | None) -> Actor:
    """Who reports: the caller, or an anonymous resident (public intake, like a 12345 web form)."""
    if caller is None:
        return Actor(f"anon-{secrets.token_hex(8)}", "resident", None)
    return caller.actor


def require_staff(caller: Caller, what: str) -> None:
    if caller.role not in STAFF_ROLES:
        raise Forbidden(f"{what} is for staff; role {caller.role!r} may not see it", role=caller.role)


def require_admin(caller: Caller) -> None:
    if caller.role != "admin":
        raise Forbidden(f"only an admin may do this (you are {caller.role})", role=caller.role)


# --- masking ------------------------------------------------------------------------------------

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?)(\d{3,4})(\d{4})(?!\d)")
_DIGITS = re.compile(r"\d+")


def sees_contact(caller: Caller | None) -> bool:
    return caller is not None and caller.role in CONTACT_ROLES


def mask_name(name: str | None) -> str | None:
    """李明 → 李*, 欧阳娜娜 → 欧***; an ASCII name keeps its first letter."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678; anything else keeps only its last four digits."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(0, len(digits) - 4) + digits[-4:] if len(digits) > 4 else "****"


def mask_address(address: str | None) -> str | None:
    """Keep the road or estate, hide the numbers: 海港路12号3单元501室 → 海港路**号*单元***室."""
    if not address:
        return address
    return _DIGITS.sub(lambda m: "*" * len(m.group()), address)


def mask_text(text: str | None) -> str | None:
    """Phone numbers inside free text (descriptions, replies) are masked too."""
    if not text:
        return text
    text = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


def mask_point(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    """About 100 m: enough to place a case in its grid, not at a door."""
    return (round(lat, 3) if lat is not None else None, round(lon, 3) if lon is not None else None)


def mask_value(value: Any) -> Any:
    """Free text anywhere in an event's data, recursively."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


@dataclass(frozen=True)
class Contact:
    name: str | None
    phone: str | None
    address: str | None
    lat: float | None
    lon: float | None
    description: str


def contact_for(caller: Caller | None, row: Any, *, export: bool = False) -> Contact:
    """The reporter's contact and the case's location as this caller (or an export) may see them."""
    if sees_contact(caller) and not export:
        return Contact(row.reporter_name, row.reporter_phone, row.address, row.lat, row.lon, row.description)
    lat, lon = mask_point(row.lat, row.lon)
    return Contact(mask_name(row.reporter_name), mask_phone(row.reporter_phone), mask_address(row.address), lat,
                   lon, mask_text(row.description) or "")


def events_for(caller: Caller | None, events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Event dicts with free-text phone numbers masked for callers who do not see contacts."""
    if sees_contact(caller):
        return [dict(e) for e in events]
    return [{**e, "data": mask_value(e.get("data") or {})} for e in events]



#: What a live change tells about its case, for scope checks without a database read.
CHANGE_FACTS = ("number", "holder_unit", "community_code", "street_code", "district_code", "reporter_id")


def change_facts(change: Any) -> dict[str, Any]:
    return {k: getattr(change, k) for k in CHANGE_FACTS}


def needs_lookup(scope: Scope) -> bool:
    """True when checking a live change against this scope may need a database read (e.g. a grid's cases)."""
    return any(col not in CHANGE_FACTS for col, _ in scope.terms)


def sees_change(svc: Services, scope: Scope, change: Any) -> bool:
    """Whether a live change (:class:`~gridflow.service.context.Change`) is in scope."""

    def fetch(column: str) -> Any:
        with svc.uow(write=False) as uow:
            return uow.session.exec(select(getattr(CaseRow, column)).where(CaseRow.number == change.number)).first()

    return scope.contains(change_facts(change), fetch)
