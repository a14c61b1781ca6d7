"""Typed dependencies, so route signatures stay one line: the wired app, its services, the caller."""

from __future__ import annotations

import threading
import time
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ..adapters.rate_limits import RateLimits
from ..bootstrap import App
from ..service.auth import Caller, authenticate_attempt, require_admin
from ..service.context import Services
from ..service.scopes import SeenCases
from ..service.sessions import COOKIE as SESSION_COOKIE, resume

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="An API key issued by an admin (demo: `demo-community`, …)")
bearer = HTTPBearer(auto_error=False, description="An API key, or a resident's case token from reporting")


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the thread pool,
# a thread hop per dependency per request; these only read app state (or await the pool themselves).

async def get_app(request: Request) -> App:
    return request.app.state.gridflow


async def get_services(request: Request) -> Services:
    return request.app.state.gridflow.services


async def get_seen_cases(request: Request) -> SeenCases:
    return request.app.state.seen_cases


def rate_limits(request: Request) -> RateLimits:
    """The app's attempt counters, built on first use: in Redis (under the run's prefix) when one is
    configured, so API workers share them, else in this process's memory."""
    limits = getattr(request.app.state, "rate_limits", None)
    if limits is None:
        s = request.app.state.gridflow.settings
        rates = {"auth_failure": s.auth_failure_limit, "anonymous_report": s.anonymous_report_limit}
        limits = RateLimits(rates, storage_url=s.timer_index_url, prefix=s.redis_prefix)
        request.app.state.rate_limits = limits
    return limits


def client_address(request: Request) -> str:
    """The peer's address (behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
    ``--forwarded-allow-ips`` so this is the client's, not the proxy's)."""
    return request.client.host if request.client is not None else "unknown"


async def get_throttle(request: Request) -> RateLimits:
    return rate_limits(request)


async def get_client_address(request: Request) -> str:
    return client_address(request)


AppDep = Annotated[App, Depends(get_app)]
ServicesDep = Annotated[Services, Depends(get_services)]
SeenCasesDep = Annotated[SeenCases, Depends(get_seen_cases)]
ThrottleDep = Annotated[RateLimits, Depends(get_throttle)]
ClientAddressDep = Annotated[str, Depends(get_client_address)]


class CallerCache:
    """Recently resolved tokens, so a busy client is not looked up on every request.

    Entries live ``ttl`` seconds; revoking a key through this process clears the
    cache at once, other processes notice within ``ttl``.
    """

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Caller | None:
        entry = self._entries.get(token)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, caller: Caller) -> None:
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token] = (time.monotonic() + self.ttl, caller)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _token(api_key: str | None, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if api_key:
        return api_key
    return credentials.credentials if credentials is not None else None


async def get_caller(request: Request, svc: ServicesDep,
                     api_key: Annotated[str | None, Security(api_key_header)] = None,
                     credentials: Annotated[HTTPAuthorizationCredentials | None,
                                            Security(bearer)] = None) -> Caller:
    token = _token(api_key, credentials)
    cache: CallerCache = request.app.state.callers
    if token:
        caller = cache.get(token)
        if caller is not None and (caller.expires_at is None or caller.expires_at > svc.clock.now()):
            return caller
    # A credential verified in the last seconds is no attempt; anything else is counted (429 when too many).
    caller = await run_in_threadpool(authenticate_attempt, svc, rate_limits(request), client_address(request),
                                     token)
    cache.put(token or "", caller)
    return caller


async def get_optional_caller(request: Request, svc: ServicesDep,
                              api_key: Annotated[str | None, Security(api_key_header)] = None,
                              credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                     Security(bearer)] = None
                              ) -> Caller | None:
    if not _token(api_key, credentials):
        return None
    return await get_caller(request, svc, api_key, credentials)


async def get_stream_caller(request: Request, svc: ServicesDep,
                            api_key: Annotated[str | None, Security(api_key_header)] = None,
                            credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                   Security(bearer)] = None) -> Caller:
    """The caller of a read-only stream: an API key, or else the console's session cookie (a browser's
    ``EventSource`` sends no headers of its own)."""
    if not _token(api_key, credentials) and request.cookies.get(SESSION_COOKIE):
        session = await run_in_threadpool(resume, svc, request.cookies.get(SESSION_COOKIE))
        if session is not None:
            return session.caller
    return await get_caller(request, svc, api_key, credentials)


async def get_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    require_admin(caller)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
StreamCallerDep = Annotated[Caller, Depends(get_stream_caller)]
OptionalCallerDep = Annotated[Caller | None, Depends(get_optional_caller)]
AdminDep = Annotated[Caller, Depends(get_admin)]
