"""The FastAPI application factory, built on :func:`gridflow.bootstrap.bootstrap`.

Nothing is created at import time: ``create_app()`` reads settings and wires
gridflow when called (``uvicorn --factory gridflow.api.app:create_app``), or
wraps an :class:`App` the caller already built (tests, ``gridflow serve``).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from fastapi.openapi.utils import get_openapi

from .. import __version__
from ..bootstrap import App, bootstrap
from ..service.scopes import SeenCases
from ..settings import Settings
from . import errors
from .deps import CallerCache
from .limits import ROUTE_BODY_LIMITS, BodyLimit
from .live import EventHub
from .metrics import Metrics, RequestTimer
from .routes import admin, board, care, cases, catalog, channels, clock, console, ops, stats, workflows

log = logging.getLogger(__name__)
#: The console's own scripts and styles (nothing is loaded from outside the app).
STATIC = Path(__file__).resolve().parent / "static"
DESCRIPTION = """
gridflow moves community cases through their lifecycle — grid report, community triage,
department response, resident feedback, review — with deadlines on working-time calendars
and escalation up the ladder (grid → community → street → district → city).

**Authentication**: an API key as `X-API-Key: <key>` or `Authorization: Bearer <key>`.
A resident who reports gets a token for that case and uses it the same way.
With `gridflow serve`, the demo keys are printed at start (`demo-community`, `demo-housing`, …).

**Errors** are `application/problem+json` (RFC 9457) with a stable `code`, e.g.
`action_not_allowed` (with `allowed`), `role_not_allowed`, `version_conflict`, `case_not_found`.

**Concurrency**: every case response carries its version as `ETag`; send it back as
`If-Match` on an action and a stale version gets 409 `version_conflict`. Send an
`Idempotency-Key` to make retries safe.
"""


def create_app(app: App | None = None, settings: Settings | None = None, *,
               start_runner: bool = True) -> FastAPI:
    """Build the HTTP API around a wired gridflow ``app`` (bootstrapped from ``settings`` if not given).

    The lifespan starts and stops the in-process timer runner when there is one;
    an app bootstrapped here is also closed at shutdown.
    """
    owned = app is None
    if app is None:
        app = bootstrap(settings or Settings())
    hub = EventHub()
    metrics = Metrics(app, lambda: hub.subscribers)
    seen_cases = SeenCases()
    listeners = [seen_cases.on_change, hub.publish, metrics.observe_change]
    app.services.listeners.extend(listeners)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        runner = app.runner
        started = start_runner and hasattr(runner, "start")
        if started:
            runner.start()
            log.info("timer runner started (%s)", runner.name)
        try:
            yield
        finally:
            if started:
                runner.stop()
            for listener in listeners:
                if listener in app.services.listeners:
                    app.services.listeners.remove(listener)
            if owned:
                app.close()

    # Swagger UI and ReDoc from assets the app serves itself (fastapi-offline): a dispatch centre's network
    # is usually cut off from the internet, and a CDN page would stay blank there.
    api = FastAPIOffline(title="gridflow", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                         openapi_url="/openapi.json", docs_url="/docs", redoc_url="/redoc",
                         static_url="/static/api-docs",
                         swagger_ui_parameters={"validatorUrl": None})  # no badge from validator.swagger.io
    api.state.gridflow = app
    api.state.hub = hub
    api.state.metrics = metrics
    api.state.callers = CallerCache()
    api.state.seen_cases = seen_cases
    errors.install(api)
    for module in (workflows, catalog, cases, board, stats, care, admin, clock, ops, channels, console):
        api.include_router(module.router)
    api.mount("/static/console", StaticFiles(directory=STATIC), name="console-static")
    api.add_middleware(BodyLimit, max_bytes=app.settings.max_body_bytes, routes=ROUTE_BODY_LIMITS)
    api.add_middleware(RequestTimer, metrics=metrics)  # outermost: it times refused bodies too
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    return api


def _openapi(api: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with problem responses documented only as ``application/problem+json``."""
    if api.openapi_schema:
        return api.openapi_schema
    schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
    for path in schema.get("paths", {}).values():
        for op in path.values():
            for status, resp in op.get("responses", {}).items():
                content = resp.get("content", {})
                if errors.MEDIA_TYPE in content:
                    content.pop("application/json", None)
    api.openapi_schema = schema
    return schema
