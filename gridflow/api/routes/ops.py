"""Operations: health for load balancers, metrics for Prometheus, and the small web console."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ... import __version__
from ...service.health import timer_backlog
from ..deps import AppDep
from ..schemas import HealthPublic

router = APIRouter(tags=["operations"])
STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/healthz", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def healthz(app: AppDep) -> JSONResponse:
    """200 when the database answers; the timer runner's state (or none, when Celery workers fire timers)."""
    db_ok = app.services.db.ping()
    status = getattr(app.runner, "status", None)
    runner = status.as_dict() if status is not None else None
    timers = None
    if db_ok:
        backlog = timer_backlog(app.services)
        timers = {"pending": backlog.pending, "due": backlog.due, "lag_s": round(backlog.lag_s, 3)}
    stopped = runner is not None and app.runner.kind == "thread" and not runner["running"]
    body = HealthPublic(status="unavailable" if not db_ok else "degraded" if stopped else "ok",
                        database="ok" if db_ok else "unavailable", runner=runner, timers=timers,
                        version=__version__)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if db_ok else 503)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}},
          "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/", include_in_schema=False)
def console() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")
