"""The organisation as read views: the unit directory (for staff), users and API keys (for admins).

Creating units, users and keys is :mod:`.admin`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from ..adapters.orm import ApiKey, User
from .auth import Caller, require_staff
from .context import Services


@dataclass(frozen=True)
class UnitView:
    code: str
    name: str
    kind: str
    parent: str | None
    has_boundary: bool = False
    retired: bool = False


@dataclass(frozen=True)
class UserView:
    id: str
    name: str
    role: str
    unit: str | None
    active: bool
    phone: str | None = None


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    user_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None


def list_units(svc: Services, caller: Caller, kind: str | None = None) -> list[UnitView]:
    require_staff(caller, "the unit directory")
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
    return sorted((UnitView(u.code, u.name, u.kind, u.parent, bool(u.boundary_wkt), u.retired)
                   for u in svc.units.all()
                   if kind is None or u.kind == kind), key=lambda u: u.code)


def list_users(svc: Services, unit: str | None = None) -> list[UserView]:
    with svc.uow(write=False) as uow:
        stmt = select(User).order_by(User.id)
        if unit is not None:
            stmt = stmt.where(User.unit_code == unit)
        return [UserView(u.id, u.name, u.role, u.unit_code, u.active, u.phone)
                for u in uow.session.exec(stmt)]


def list_api_keys(svc: Services, user_id: str | None = None) -> list[ApiKeyView]:
    with svc.uow(write=False) as uow:
        stmt = select(ApiKey).order_by(ApiKey.id)
        if user_id is not None:
            stmt = stmt.where(ApiKey.user_id == user_id)
        return [ApiKeyView(k.id or 0, k.user_id, k.label, k.created_at, k.revoked_at, k.expires_at)
                for k in uow.session.exec(stmt)]
