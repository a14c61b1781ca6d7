"""Who is calling: an API key or a resident's case token turned into a :class:`Caller`, and the role checks.

Which cases a caller may see is :mod:`.scopes`; which personal data it sees, :mod:`.masking`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import select

from ..adapters.orm import CaseRow
from ..engine.case import Actor
from ..engine.errors import Forbidden, GridflowError
from ..engine.guards import resident_identity
from ..engine.roles import STAFF_ROLES
from .admin import key_for_token
from .context import Services
from .tokens import hash_token


class Unauthorized(GridflowError):
    code = "unauthorized"
    status = 401


class RateLimited(GridflowError):
    """Too many attempts (failed authentications, anonymous reports, open streams); ``retry_after`` says
    when to try again."""

    code = "rate_limited"
    status = 429


class IntakeNotPublic(GridflowError):
    """Anonymous callers may open cases only of workflows that declare ``intake: {public: true}``."""

    code = "intake_not_public"
    status = 403


class Throttle(Protocol):
    """Counts attempts per key (``adapters.rate_limits.RateLimits``)."""

    def retry_after(self, rule: str, *key: str) -> int | None: ...

    def hit(self, rule: str, *key: str) -> int | None: ...


@dataclass(frozen=True)
class Caller:
    """Who is asking: a user with an API key, or a resident holding the token of one case."""

    id: str
    role: str
    unit: str | None = None
    name: str = ""
    #: Set when the caller used a resident's case token: the one case it opens.
    case_number: str | None = None
    #: When the API key used expires (None: never); a cached caller is not served past it.
    expires_at: datetime | None = None

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
    found = key_for_token(svc, token)
    if found is not None:
        user, expires_at = found
        if expires_at is not None and expires_at <= svc.clock.now():
            raise Unauthorized(f"this API key expired at {expires_at.isoformat()}; "
                               "ask an admin for a new one")
        return Caller(user.id, user.role, user.unit_code, user.name, expires_at=expires_at)
    with svc.uow(write=False) as uow:
        row = uow.session.exec(select(CaseRow.number, CaseRow.reporter_id)
                               .where(CaseRow.resident_token_hash == hash_token(token))).first()
    if row is None:
        raise Unauthorized("unknown or revoked credentials")
    number, _ = row
    # The resident's own identity for this case, never the staff member who logged the report for them.
    return Caller(resident_identity(number), "resident", None, "", number)


def authenticate_attempt(svc: Services, throttle: Throttle, address: str, token: str | None) -> Caller:
    """:func:`authenticate`, refused with 429 while this address or this credential has too many recent
    failures (every wrong key counts for both; a missing key is not a guess and does not)."""
    if not token:
        return authenticate(svc, token)
    keys = (("address", address), ("credential", hash_token(token)))
    waits = [w for w in (throttle.retry_after("auth_failure", *k) for k in keys) if w]
    if waits:
        raise RateLimited(f"too many failed authentications from this address or with this key; "
                          f"try again in {max(waits)} s",
                          retry_after=max(waits))
    try:
        return authenticate(svc, token)
    except Unauthorized:
        for key in keys:
            throttle.hit("auth_failure", *key)
        raise


def admit_anonymous_report(svc: Services, throttle: Throttle, address: str, workflow: str) -> None:
    """An anonymous report is taken for a workflow with public intake, and so many per address."""
    defn = svc.catalog.newest(workflow)
    if not defn.intake.public:
        raise IntakeNotPublic(f"workflow {workflow!r} does not take anonymous reports; "
                              "send an API key (X-API-Key) to report one", workflow=workflow)
    wait = throttle.hit("anonymous_report", "address", address)
    if wait:
        raise RateLimited(f"too many reports without credentials from here; try again in {wait} s",
                          retry_after=wait)


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
