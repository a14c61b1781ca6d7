"""Who is calling: an API key or a resident's case token turned into a :class:`Caller`, and the role checks.

Which cases a caller may see is :mod:`.scopes`; which personal data it sees, :mod:`.masking`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlmodel import select

from ..adapters.orm import CaseRow
from ..engine.case import Actor
from ..engine.errors import Forbidden, GridflowError
from ..engine.roles import STAFF_ROLES
from .admin import user_for_token
from .context import Services
from .tokens import hash_token


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
                               .where(CaseRow.resident_token_hash == hash_token(token))).first()
    if row is None:
        raise Unauthorized("unknown or revoked credentials")
    number, reporter = row
    return Caller(reporter or f"case:{number}", "resident", None, "", number)


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
