"""Operations: health for load balancers and metrics for Prometheus (the console: ``routes.console``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ... import __version__
from ...service.health import assess_health
from ..deps import AppDep
from ..schemas import HealthPublic

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def healthz(app: AppDep) -> JSONResponse:
    """``ok`` (200) only when the database reads and writes, the timer runner's polls succeed and due
    timers are fired in time; otherwise ``degraded`` with the reasons named — 503 when nothing can be
    written (database locked or refusing writes, runner failing) — or ``unavailable`` (503)."""
    health = assess_health(app.services, app.runner)
    status = getattr(app.runner, "status", None)
    backlog = health.backlog
    timers = None if backlog is None else {"pending": backlog.pending, "due": backlog.due,
                                           "lag_s": round(backlog.lag_s, 3)}
    body = HealthPublic(status=health.status, reasons=list(health.reasons), database=health.database,
                        write_error=health.write_error,
                        runner=status.as_dict() if status is not None else None, timers=timers,
                        calendar_estimated_years=list(health.calendar_estimated_years), version=__version__)
    return JSONResponse(body.model_dump(mode="json"), status_code=health.http_status,
                        headers={"Retry-After": "5"} if health.http_status == 503 else None)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}},
          "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

