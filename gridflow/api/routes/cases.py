"""Cases: report, read, list, export, act on, and read their hash-chained history."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import datetime, timezone
from typing import Annotated, Any, Iterator

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Response
from fastapi.responses import StreamingResponse

from ...service import case_view, exports, lists
from ...service.audit import verify_case
from ...service.auth import admit_anonymous_report, reporter_of
from ...service.actions import act_as
from ...service.intake import ReportCase, report_case, workflow_of
from ...service.masking import events_for
from . import API_PREFIX
from ..deps import (
    CallerDep, ClientAddressDep, OptionalCallerDep, SeenCasesDep, ServicesDep, ThrottleDep,
)
from ..errors import responses
from ..schemas import (
    ActionResultPublic, CaseCreate, CaseCreated, CaseDetailPublic, CasesPublic, ChainPublic, Code, FreeJson,
    HistoryPublic, IsoDateTime,
)

router = APIRouter(prefix=API_PREFIX, tags=["cases"])
#: Rows of CSV sent at a time by an export.
CSV_CHUNK_ROWS = 500
Number = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$",
                             description="the case number, e.g. GF-2026-000123")]
ActionName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """``"3"``, ``W/"3"`` or ``3`` → 3; ``*`` or nothing → no check."""
    if value is None or value.strip() in ("", "*"):
        return None
    tag = value.split(",")[0].strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 12:
        raise lists.RequestInvalid("If-Match must carry the case version as returned in its ETag, e.g. \"3\"",
                                   fields={"If-Match": value[:40]})
    return int(tag)


@router.post("/cases", status_code=201, response_model=CaseCreated, responses=responses(
    401, 403, 404, 422, 429, s403="intake_not_public", s429="rate_limited"))
def report(svc: ServicesDep, caller: OptionalCallerDep, body: CaseCreate, response: Response,
           throttle: ThrottleDep, address: ClientAddressDep) -> CaseCreated:
    """Report a case. Without credentials it is an anonymous resident's report — for workflows with public
    intake only (403 ``intake_not_public`` otherwise), so many per address (429 ``rate_limited``); a
    resident gets a token (shown once) to follow the case and rate it. ``confidential`` (举报人保密)
    hides who reported it from every handling unit."""
    workflow = workflow_of(svc, body.workflow, body.category)
    if caller is None:
        admit_anonymous_report(svc, throttle, address, workflow)
    cmd = ReportCase(
        workflow=workflow, reporter=reporter_of(caller), category=body.category, title=body.title,
        description=body.description, unit=body.unit, lat=body.location.lat, lon=body.location.lon,
        address=body.location.address, reporter_name=body.reporter.name, reporter_phone=body.reporter.phone,
        attachments=tuple(a.model_dump(exclude_none=True) for a in body.attachments), channel=body.channel,
        confidential=body.confidential)
    result = report_case(svc, cmd)
    response.headers["Location"] = f"/api/v1/cases/{result.number}"
    response.headers["ETag"] = etag(result.version)
    return CaseCreated(number=result.number, state=result.state, version=result.version,
                       resident_token=result.resident_token)


class CaseQuery:
    """Filters for listing and exporting cases."""

    def __init__(
        self,
        state: Code | None = None, stage: Code | None = None,
        unit: Annotated[Code | None,
                        Query(description="held by, located in, or escalated to this unit")] = None,
        category: Code | None = None, workflow: Code | None = None,
        escalation_level: Annotated[int | None, Query(ge=0, le=100)] = None,
        overdue: Annotated[bool | None, Query(description="open with a breached or passed deadline")] = None,
        warned: bool | None = None, supervised: bool | None = None, closed: bool | None = None,
        reported_from: Annotated[IsoDateTime | None, Query(description="reported at or after")] = None,
        reported_to: Annotated[IsoDateTime | None, Query(description="reported before")] = None,
    ) -> None:
        if reported_from is not None and reported_to is not None and _utc(reported_to) < _utc(reported_from):
            raise lists.RequestInvalid("reported_to is before reported_from",
                                       fields={"reported_to": "before reported_from"})
        self.filter = lists.CaseFilter(state, stage, unit, category, workflow, escalation_level, overdue,
                                       warned, supervised, closed, reported_from, reported_to)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)  # as lists.as_utc reads it


Filters = Annotated[CaseQuery, Depends()]


@router.get("/cases", response_model=CasesPublic, responses=responses(401, 422))
def list_cases(svc: ServicesDep, caller: CallerDep, q: Filters,
               cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]*$")] = None,
               limit: Annotated[int, Query(ge=1, le=lists.MAX_PAGE)] = 50) -> CasesPublic:
    """Cases in the caller's scope, newest first, with cursor pagination."""
    page = lists.list_cases(svc, caller, q.filter, cursor, limit)
    return CasesPublic(data=page.data, next_cursor=page.next_cursor)


@router.get("/exports/cases", response_class=StreamingResponse, responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV, contacts masked"},
    **responses(401, 403, 422)})
def export_cases(svc: ServicesDep, caller: CallerDep, q: Filters) -> StreamingResponse:
    """Cases in scope as CSV for spreadsheets (UTF-8 with a BOM); residents' names, phones, ID numbers and
    addresses are always masked, and a cell that would run as a formula starts with ``'``."""
    rows = exports.export_rows(svc, caller, q.filter)
    first = next(rows, None)  # raises before the response starts if the caller may not export
    return StreamingResponse(csv_chunks(itertools.chain([first], rows) if first is not None else iter(())),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="cases.csv"'})


def csv_chunks(rows: Iterator[dict[str, Any]], chunk: int = CSV_CHUNK_ROWS) -> Iterator[str]:
    """The CSV text, BOM and header first, then ``chunk`` rows at a time: one ``yield`` per row costs
    more than the row (each is a trip through the server's event loop)."""
    buf = io.StringIO()
    buf.write("\ufeff")  # a UTF-8 BOM, so spreadsheets read the Chinese text as UTF-8
    writer = csv.DictWriter(buf, fieldnames=list(exports.EXPORT_COLUMNS))
    writer.writeheader()
    yield buf.getvalue()
    while True:
        batch = list(itertools.islice(rows, chunk))
        if not batch:
            return
        buf.seek(0)
        buf.truncate()
        writer.writerows(batch)
        yield buf.getvalue()


@router.get("/cases/{number}", response_model=CaseDetailPublic, responses=responses(401, 404, 422))
def get_case(svc: ServicesDep, caller: CallerDep, number: Number, response: Response) -> Any:
    """One case with its SLA light, the actions open to the caller, and why each deadline stands \
where it does."""
    detail = case_view.get_case(svc, caller, number)
    response.headers["ETag"] = etag(detail.version)
    return detail


@router.post("/cases/{number}/actions/{action}", response_model=ActionResultPublic, responses=responses(
    401, 403, 404, 409, 422, s403="role_not_allowed", s404="case_not_found, unknown_action",
    s409="action_not_allowed (with `allowed`), version_conflict, guard_failed",
    s422="payload_invalid (with `fields`), idempotency_key_reused, request_invalid"))
def take_action(
    svc: ServicesDep, caller: CallerDep, seen: SeenCasesDep, number: Number,
    action: ActionName,
    payload: Annotated[FreeJson | None,
                       Body(description="the action's fields, e.g. {\"reason\": \"…\"}; plain JSON, at most "
                                        "6 levels deep and 1,000 values; `attachments`: metadata only",
                            examples=[{"department": "dept-housing"}])] = None,
    if_match: Annotated[str | None,
                        Header(max_length=100, description="the ETag you read; stale → 409")] = None,
    idempotency_key: Annotated[str | None, Header(max_length=160, pattern=r"^[\x21-\x7e]+$",
                                                  description="repeat-safe: the same key returns the first "
                                                              "result")] = None,
) -> Response:
    """Take an action. 409 ``action_not_allowed`` lists the allowed actions; 403 when the role may not."""
    result = act_as(svc, caller, number, action, payload, expected_version=parse_if_match(if_match),
                    idempotency_key=idempotency_key, seen_cases=seen)
    # The hot path: built as JSON directly (the shape is ActionResultPublic, documented above) rather than
    # validated again on the way out.
    body = {"number": result.number, "state": result.state, "version": result.version,
            "events": events_for(caller, result.events), "replayed": result.replayed}
    return Response(json.dumps(body, ensure_ascii=False, default=str), media_type="application/json",
                    headers={"ETag": etag(result.version)})


@router.get("/cases/{number}/history", response_model=HistoryPublic, responses=responses(401, 404, 422))
def get_history(svc: ServicesDep, caller: CallerDep, number: Number) -> HistoryPublic:
    """Every event with actor, role, time and its link in the hash chain."""
    return HistoryPublic(number=number, data=case_view.history(svc, caller, number))


@router.get("/cases/{number}/history/verify", response_model=ChainPublic, responses=responses(401, 404, 422))
def verify_history(svc: ServicesDep, caller: CallerDep, number: Number) -> ChainPublic:
    """Recompute the case's hash chain; names the first broken link if any event was altered."""
    return ChainPublic(**verify_case(svc, number, caller).as_dict())
