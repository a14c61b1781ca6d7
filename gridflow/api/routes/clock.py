"""The admin's clock: see it, and move it when the server runs on a manual clock (training, demos)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ...service import clock_control
from . import API_PREFIX
from ..deps import AdminDep, AppDep
from ..errors import responses
from ..schemas import IsoDateTime

router = APIRouter(prefix=API_PREFIX, tags=["organisation"])


class ClockPublic(BaseModel):
    kind: Literal["manual", "scaled", "system"] = Field(
        description="manual: stands still until moved here; scaled: simulated time; system: real time")
    now: datetime
    adjustable: bool = Field(description="true on a manual clock: POST /api/v1/admin/clock moves it")


class ClockMove(BaseModel):
    """Exactly one of ``advance`` and ``to``."""

    model_config = ConfigDict(extra="forbid")
    advance: str | None = Field(None, max_length=64, examples=["PT4H"],
                                description="an ISO 8601 duration (PT4H, P1D, P1DT2H30M), at most 366 days")
    to: IsoDateTime | None = Field(None, description="an instant with its UTC offset, not before now")


class ClockMoved(BaseModel):
    previous: datetime
    now: datetime
    fired: int = Field(description="timers fired because of the move, before this answer")


@router.get("/admin/clock", response_model=ClockPublic, responses=responses(401, 403))
def get_clock(app: AppDep, _: AdminDep) -> ClockPublic:
    """The server's clock: its kind and its now."""
    state = clock_control.clock_state(app.services)
    return ClockPublic(kind=state.kind, now=state.now, adjustable=state.adjustable)


@router.post("/admin/clock", response_model=ClockMoved, responses=responses(
    401, 403, 404, 422, s404="clock_not_manual", s422="clock_move_refused, request_invalid"))
def move_clock(app: AppDep, _: AdminDep, body: ClockMove) -> ClockMoved:
    """Move a manual clock forward (``{"advance": "PT4H"}`` or ``{"to": "2026-03-02T09:00:00+08:00"}``);
    every timer due by then fires before the answer. 404 ``clock_not_manual`` on any other clock."""
    runner = app.runner
    fire_due = getattr(runner, "run_due", None)
    moved = clock_control.move_clock(app.services, advance=body.advance, to=body.to, fire_due=fire_due)
    return ClockMoved(previous=moved.previous, now=moved.now, fired=moved.fired)
