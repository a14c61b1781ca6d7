"""For dispatch boards: the worklist and live changes as Server-Sent Events (the 三率: ``routes.stats``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ...service import lists
from . import API_PREFIX
from ..deps import CallerDep, ServicesDep, StreamCallerDep
from ..errors import responses
from ..live import open_stream
from ..schemas import CasesPublic

router = APIRouter(prefix=API_PREFIX, tags=["dispatch board"])


@router.get("/worklist", response_model=CasesPublic, responses=responses(401, 422))
def worklist(svc: ServicesDep, caller: CallerDep,
             cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]*$",
                                                 description="`next_cursor` of the page before")] = None,
             limit: Annotated[int, Query(ge=1, le=lists.MAX_PAGE)] = 50) -> CasesPublic:
    """Open cases waiting on the caller's unit and role: held by it, escalated to it (改派, 提级办理, 督办 are
    its to take), supervised, or co-handled by it. Most urgent first: the most overdue first, then the
    least time left; cases with no running deadline last. Each carries its light (green / yellow / red),
    the working time left and the flags `suspended`, `supervised`, `escalated` (the level), `overdue` and
    `escalation_alert` (at the top of its ladder). Pages continue with `?cursor=` set to the page's
    `next_cursor` (null on the last page)."""
    page = lists.worklist(svc, caller, limit, cursor or None)
    return CasesPublic(data=page, next_cursor=page.next_cursor)


@router.get("/events", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "`case` events: {number, state, version, holder_unit, events[…]}"},
    **responses(401, 422, 429, s429="rate_limited: too many streams open for these credentials")})
async def events(request: Request, svc: ServicesDep, caller: StreamCallerDep,
                 limit: Annotated[int | None, Query(ge=1, le=100_000,
                                                    description="close after N events")] = None,
                 heartbeat: Annotated[float, Query(ge=0.05, le=60)] = 15.0) -> StreamingResponse:
    """Committed case changes as they happen, only for cases the caller may see, contacts masked by role.
    The console's session cookie serves as credentials here too. A caller holds at most
    ``GRIDFLOW_SSE_STREAMS_PER_CALLER`` streams at once (429 beyond)."""
    hub = request.app.state.hub
    body = open_stream(hub, svc, caller, cap=svc.settings.sse_streams_per_caller, limit=limit,
                       heartbeat=heartbeat, is_disconnected=request.is_disconnected)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
