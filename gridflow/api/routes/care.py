"""The care register (特殊群体台账) and the monthly visit rate (月探访率): see docs/care-visits.md."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, StringConstraints

from ...engine.errors import NotFound
from ...service import care
from . import API_PREFIX
from ..deps import CallerDep, ServicesDep
from ..errors import responses
from ..schemas import Code

router = APIRouter(prefix=API_PREFIX, tags=["care register"])

RegisterId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.-]+$")]
Month = Annotated[str, StringConstraints(pattern=r"^(20\d\d|2100)-(0[1-9]|1[0-2])$")]

RATE_DEFINITIONS = """\
Per grid, community and street of the person's grid, and in total, counted from the history of each
registered person's special_care_visit case (never from its current state).
**Owed** (应探访): the visit deadline targeted the month (`DeadlineStarted.period`), breached for it or
went on to it after an unvisited month (`DeadlineBreached.period` / `next_period`), was resumed onto it
after a pause, or a visit met it.
**Visited** (已探访): a counted visit was recorded in the month (`DeadlineStopped.period_met`); kinds the
city does not count (a phone call for 失能) are recorded but do not meet the month.
**rate** = visited / owed (null when nothing was owed). `missed`: the people owed and not visited,
masked as the register is for the caller.
按网格、社区、街道统计：应探访人数（本月有探访义务）、已探访人数（本月有计入的探访记录）、
月探访率 = 已探访 ÷ 应探访；依据案件历史计算，不依据当前状态。
"""


class CarePersonIn(BaseModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    group_type: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    grid: Code
    id_number: Annotated[str, StringConstraints(max_length=32)] | None = None
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    address: Annotated[str, StringConstraints(max_length=300)] | None = None
    worker: Code | None = None
    frequency: Literal["monthly"] = "monthly"


class CarePersonPublic(BaseModel):
    register_id: str
    name: str | None
    id_number: str | None
    phone: str | None
    address: str | None
    group_type: str
    grid: str
    worker: str | None
    frequency: str
    case_number: str | None
    registered_at: str


class CarePeoplePublic(BaseModel):
    people: list[CarePersonPublic]


class VisitFigures(BaseModel):
    owed: int
    visited: int
    rate: float | None


class UnitVisitFigures(VisitFigures):
    kind: Literal["grid", "community", "street"]
    unit: str
    name: str


class MissedPerson(CarePersonPublic):
    community: str | None


class CareVisitStatsPublic(BaseModel):
    month: str
    total: VisitFigures
    units: list[UnitVisitFigures]
    missed: list[MissedPerson]


@router.get("/care/people", response_model=CarePeoplePublic, responses=responses(401, 422),
            summary="People on the care register in your area (personal data masked as elsewhere)")
def list_people(svc: ServicesDep, caller: CallerDep, grid: Code | None = None) -> CarePeoplePublic:
    return CarePeoplePublic(people=[CarePersonPublic(**p) for p in care.people(svc, caller, grid)])


@router.get("/care/people/{register_id}", response_model=CarePersonPublic, responses=responses(401, 404, 422))
def get_person(svc: ServicesDep, caller: CallerDep, register_id: Annotated[RegisterId, Path()]
               ) -> CarePersonPublic:
    p = care.person(svc, caller, register_id)
    if p is None:
        raise NotFound(f"no person {register_id} on the care register in your area", register_id=register_id)
    return CarePersonPublic(**p)


@router.put("/care/people/{register_id}", response_model=CarePersonPublic,
            responses=responses(401, 403, 422, 201), status_code=200,
            summary="Register a person under care, or update them (idempotent by register id); a new "
                    "person gets a special_care_visit case (201)")
def put_person(svc: ServicesDep, caller: CallerDep, register_id: Annotated[RegisterId, Path()],
               body: CarePersonIn, response: Response) -> CarePersonPublic:
    entry = care.CareEntry(register_id=register_id, **body.model_dump())
    view, outcome = care.register_as(svc, caller, entry)
    if outcome == "created":
        response.status_code = 201
    return CarePersonPublic(**view)


@router.get("/stats/care-visits", response_model=CareVisitStatsPublic, responses=responses(401, 422),
            summary="Monthly care visit rate (月探访率) per grid, community and street, and who was missed",
            description=RATE_DEFINITIONS)
def care_visit_stats(svc: ServicesDep, caller: CallerDep,
                     month: Annotated[Month, Query(description="the calendar month, YYYY-MM")]
                     ) -> CareVisitStatsPublic:
    return CareVisitStatsPublic(**care.visit_rate(svc, caller, month))


