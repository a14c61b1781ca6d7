"""For dispatch boards: the worklist, the SLA figures (三率), and live changes as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ...service import lists, stats
from . import API_PREFIX
from ..deps import CallerDep, ServicesDep
from ..errors import responses
from ..live import open_stream
from ..schemas import CasesPublic, Code, IsoDate, SlaStatsPublic, UnitStatsPublic

router = APIRouter(prefix=API_PREFIX, tags=["dispatch board"])


@router.get("/worklist", response_model=CasesPublic, responses=responses(401, 422))
def worklist(svc: ServicesDep, caller: CallerDep,
             limit: Annotated[int, Query(ge=1, le=lists.MAX_PAGE)] = 50) -> CasesPublic:
    """Open cases waiting on the caller's unit and role: held by it, escalated to it (改派, 提级办理, 督办 are
    its to take), supervised, or co-handled by it. Most urgent first: the most overdue first, then the
    least time left; cases with no running deadline last. Each carries its light (green / yellow / red),
    the working time left and the flags `suspended`, `supervised`, `escalated` (the level), `overdue` and
    `escalation_alert` (at the top of its ladder)."""
    return CasesPublic(data=lists.worklist(svc, caller, limit))


def _stats(u: stats.UnitStats) -> UnitStatsPublic:
    return UnitStatsPublic.model_validate(u, from_attributes=True)


@router.get("/stats/sla", response_model=SlaStatsPublic, responses=responses(401, 403, 422))
def sla_stats(svc: ServicesDep, caller: CallerDep,
              unit: Annotated[Code | None, Query(description="cases located in or held by this unit")] = None,
              date_from: Annotated[IsoDate | None, Query(alias="from", description="first local day")] = None,
              date_to: Annotated[IsoDate | None, Query(alias="to",
                                                       description="last local day (inclusive)")] = None,
              ) -> SlaStatsPublic:
    """Per responsible unit: received, on time, overdue, escalated, and the three rates (三率) —
    response, resolution and satisfaction."""
    report = stats.sla_stats(svc, caller, unit, date_from, date_to)
    return SlaStatsPublic(date_from=report.date_from, date_to=report.date_to,
                          units=[_stats(u) for u in report.units], total=_stats(report.total))


@router.get("/events", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "`case` events: {number, state, version, holder_unit, events[…]}"},
    **responses(401, 422, 429, s429="rate_limited: too many streams open for these credentials")})
async def events(request: Request, svc: ServicesDep, caller: CallerDep,
                 limit: Annotated[int | None, Query(ge=1, le=100_000,
                                                    description="close after N events")] = None,
                 heartbeat: Annotated[float, Query(ge=0.05, le=60)] = 15.0) -> StreamingResponse:
    """Committed case changes as they happen, only for cases the caller may see, contacts masked by role.
    A caller holds at most ``GRIDFLOW_SSE_STREAMS_PER_CALLER`` streams at once (429 beyond)."""
    hub = request.app.state.hub
    body = open_stream(hub, svc, caller, cap=svc.settings.sse_streams_per_caller, limit=limit,
                       heartbeat=heartbeat, is_disconnected=request.is_disconnected)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
