"""Units, users and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from ..adapters.orm import ApiKey, Unit, User
from ..engine.errors import DuplicateKey, GridflowError, NotFound, PayloadInvalid
from ..engine.roles import UNIT_KINDS, USER_ROLES
from .context import Services
from .tokens import hash_token, new_token


class AlreadyExists(GridflowError):
    code = "already_exists"
    status = 409


def create_unit(svc: Services, code: str, name: str, kind: str, parent: str | None = None,
                boundary_wkt: str | None = None) -> Unit:
    if kind not in UNIT_KINDS:
        raise PayloadInvalid(f"unknown unit kind {kind!r} (one of {', '.join(UNIT_KINDS)})",
                             fields={"kind": kind})
    if boundary_wkt:
        from shapely import wkt
        try:
            wkt.loads(boundary_wkt)
        except Exception:
            raise PayloadInvalid("boundary_wkt is not valid WKT",
                                 fields={"boundary_wkt": "invalid"}) from None
    with svc.uow() as uow:
        if uow.session.get(Unit, code) is not None:
            raise AlreadyExists(f"unit {code!r} already exists", code_=code)
        if parent is not None and uow.session.get(Unit, parent) is None:
            raise PayloadInvalid(f"parent unit {parent!r} does not exist", fields={"parent": parent})
        unit = Unit(code=code, name=name, kind=kind, parent_code=parent, boundary_wkt=boundary_wkt)
        uow.session.add(unit)
        uow.commit()
    svc.units.invalidate()
    return unit


def create_user(svc: Services, user_id: str, name: str, role: str, unit: str | None,
                phone: str | None = None) -> User:
    if role not in USER_ROLES:
        raise PayloadInvalid(f"unknown role {role!r} (one of {', '.join(USER_ROLES)})", fields={"role": role})
    with svc.uow() as uow:
        if uow.session.get(User, user_id) is not None:
            raise AlreadyExists(f"user {user_id!r} already exists")
        if unit is not None and uow.session.get(Unit, unit) is None:
            raise PayloadInvalid(f"unit {unit!r} does not exist", fields={"unit": unit})
        user = User(id=user_id, name=name, role=role, unit_code=unit, phone=phone)
        uow.session.add(user)
        uow.commit()
    return user


def issue_api_key(svc: Services, user_id: str, label: str = "", token: str | None = None,
                  expires_at: datetime | None = None) -> str:
    """Create an API key for a user; the token is shown once and stored only as a hash.

    ``expires_at`` (timezone-aware, in the future): from then on the key authenticates as nothing.
    """
    token = token or new_token("gf_", 32)
    now = svc.clock.now()
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
        raise PayloadInvalid("expires_at must be a timezone-aware instant in the future",
                             fields={"expires_at": "in the past" if expires_at.tzinfo else "no time zone"})
    with svc.uow() as uow:
        if uow.session.get(User, user_id) is None:
            raise NotFound(f"no user {user_id!r}")
        uow.session.add(ApiKey(user_id=user_id, key_hash=hash_token(token), label=label,
                               created_at=now, expires_at=expires_at))
        try:
            uow.commit()
        except DuplicateKey:
            raise AlreadyExists("that API key is already in use") from None
    return token


def revoke_api_key(svc: Services, key_id: int) -> None:
    """Revoke a key; revoking it again changes nothing (the first ``revoked_at`` stands)."""
    with svc.uow() as uow:
        key = uow.session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}")
        if key.revoked_at is not None:
            return
        key.revoked_at = svc.clock.now()
        uow.session.add(key)
        uow.commit()


def user_for_token(svc: Services, token: str) -> User | None:
    """The active user an unrevoked, unexpired API key stands for."""
    found = key_for_token(svc, token)
    if found is None:
        return None
    user, expires_at = found
    return user if expires_at is None or expires_at > svc.clock.now() else None


def key_for_token(svc: Services, token: str) -> tuple[User, datetime | None] | None:
    """The active user of an unrevoked API key, and when the key expires."""
    with svc.uow(write=False) as uow:
        row = uow.session.exec(
            select(User, ApiKey.expires_at).join(ApiKey, ApiKey.user_id == User.id)
            .where(ApiKey.key_hash == hash_token(token), ApiKey.revoked_at == None, User.active == True)  # noqa: E711,E712
        ).first()
        return (row[0], row[1]) if row is not None else None
