"""Console sign-in: passwords (argon2) or API keys, turned into a server-side session.

The browser holds only a random session id in a cookie; the table keeps its SHA-256, the user, the CSRF
token of the session's forms, and when it was created, last seen, ends, or was revoked. A session ends
after ``session_idle_minutes`` without a request and ``session_absolute_hours`` after sign-in; signing
out revokes it. Failed sign-ins count against the same ``auth_failure`` limits as wrong API keys.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select

from ..adapters.orm import ConsoleSession, User
from ..engine.errors import NotFound, PayloadInvalid
from .auth import Caller, RateLimited, Throttle, Unauthorized, authenticate_attempt
from .context import Services
from .tokens import hash_token

_hasher = PasswordHasher()
#: Verified when the user does not exist, so a wrong user name takes as long as a wrong password.
_NO_USER_HASH = _hasher.hash("no user has this password")
MIN_PASSWORD = 8
#: The cookie holding the session id (the console sets it; the live event stream reads it too).
COOKIE = "gridflow_session"
#: Seen-at updates closer together than this are skipped (one write per minute per session, not per page).
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SignedIn:
    """A new session: the cookie value (shown once, stored hashed) and the caller it stands for."""

    session_id: str
    csrf_token: str
    caller: Caller


@dataclass(frozen=True)
class Session:
    caller: Caller
    csrf_token: str


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise PayloadInvalid(f"a password needs at least {MIN_PASSWORD} characters",
                             fields={"password": "too short"})
    return _hasher.hash(password)


def set_password(svc: Services, user_id: str, password: str) -> None:
    """Give a user a console password (stored as an argon2 hash); the user's open sessions end."""
    digest = hash_password(password)
    now = svc.clock.now()
    with svc.uow() as uow:
        user = uow.session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        user.password_hash = digest
        uow.session.add(user)
        for s in uow.session.exec(select(ConsoleSession).where(ConsoleSession.user_id == user_id,
                                                               ConsoleSession.revoked_at.is_(None))):
            s.revoked_at = now
            uow.session.add(s)
        uow.commit()


def _check_password(svc: Services, user_id: str, password: str) -> Caller:
    with svc.uow(write=False) as uow:
        user = uow.session.get(User, user_id)
        stored = user.password_hash if user is not None and user.active else None
    try:
        _hasher.verify(stored or _NO_USER_HASH, password)
    except (VerificationError, InvalidHashError):
        stored = None
    if stored is None or user is None:
        raise Unauthorized("wrong user name or password")
    return Caller(user.id, user.role, user.unit_code, user.name)


def password_attempt(svc: Services, throttle: Throttle, address: str, user_id: str, password: str) -> Caller:
    """The user a name and password stand for; refused (429) while this address or this user name has too
    many recent failures, each failure counted for both."""
    keys = (("address", address), ("credential", hash_token(f"user:{user_id}")))
    waits = [w for w in (throttle.retry_after("auth_failure", *k) for k in keys) if w]
    if waits:
        raise RateLimited(f"too many failed sign-ins from this address or for this user; "
                          f"try again in {max(waits)} s", retry_after=max(waits))
    try:
        return _check_password(svc, user_id, password)
    except Unauthorized:
        for key in keys:
            throttle.hit("auth_failure", *key)
        raise


def sign_in(svc: Services, throttle: Throttle, address: str, *, user_id: str = "", password: str = "",
            api_key: str = "") -> SignedIn:
    """Open a session for a user name and password, or for a staff API key (a resident's case token opens
    no console session)."""
    if api_key:
        caller = authenticate_attempt(svc, throttle, address, api_key)
        if caller.case_number is not None:
            raise Unauthorized("a case token follows one case; the console needs a staff API key")
    elif user_id and password:
        caller = password_attempt(svc, throttle, address, user_id, password)
    else:
        raise Unauthorized("enter a user name and password, or an API key")
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = svc.clock.now()
    absolute = now + timedelta(hours=svc.settings.session_absolute_hours)
    if caller.expires_at is not None:  # a session never outlives the key that opened it
        absolute = min(absolute, caller.expires_at)
    with svc.uow() as uow:
        uow.session.add(ConsoleSession(id_hash=hash_token(session_id), user_id=caller.id, csrf_token=csrf,
                                       created_at=now, last_seen_at=now, expires_at=absolute))
        uow.commit()
    return SignedIn(session_id, csrf, caller)


def resume(svc: Services, session_id: str | None) -> Session | None:
    """The live session a cookie names (None when unknown, revoked, idle too long or past its end).

    A read; the last-seen time is written at most once a minute per session, in a short write of its own,
    so browsing takes no write lock."""
    if not session_id or len(session_id) > 200:
        return None
    now = svc.clock.now()
    idle = timedelta(minutes=svc.settings.session_idle_minutes)
    key = hash_token(session_id)
    with svc.uow(write=False) as uow:
        row = uow.session.get(ConsoleSession, key)
        if (row is None or row.revoked_at is not None or row.expires_at <= now
                or row.last_seen_at + idle <= now):
            return None
        user = uow.session.get(User, row.user_id)
        if user is None or not user.active:
            return None
        stale = now - row.last_seen_at >= _TOUCH_EVERY
        session = Session(Caller(user.id, user.role, user.unit_code, user.name, expires_at=row.expires_at),
                          row.csrf_token)
    if stale:
        with svc.uow() as uow:
            uow.session.execute(sa.update(ConsoleSession).where(ConsoleSession.id_hash == key,
                                                                ConsoleSession.last_seen_at < now)
                                .values(last_seen_at=now))
            uow.commit()
    return session


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def sign_out(svc: Services, session_id: str | None) -> None:
    """Revoke the session (nothing happens for an unknown one)."""
    if not session_id or len(session_id) > 200:
        return
    with svc.uow() as uow:
        row = uow.session.get(ConsoleSession, hash_token(session_id))
        if row is not None and row.revoked_at is None:
            row.revoked_at = svc.clock.now()
            uow.session.add(row)
            uow.commit()
