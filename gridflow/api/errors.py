"""Every error as ``application/problem+json`` (RFC 9457) with a stable ``code``.

One handler maps gridflow's named errors (their ``code``, ``status`` and
``details``; 429 and 503 with ``Retry-After``); the others cover request validation, unknown routes, an
unreachable database and anything unexpected, so clients parse one shape.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine.errors import DataRefused, GridflowError, StoreUnavailable

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
_RESERVED = {"type", "title", "status", "detail", "instance", "code"}
_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "request_invalid", 429: "too_many_requests"}


def problem(request: Request | None, status: int, code: str, detail: str, *,
            headers: dict[str, str] | None = None, **extensions: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:gridflow:problem:{code}", "title": code.replace("_", " ").capitalize(),
        "status": status, "detail": detail, "code": code,
        "instance": request.url.path if request is not None else None,
    }
    for key, value in extensions.items():
        body[key if key not in _RESERVED else f"{key}_"] = value
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers, media_type=MEDIA_TYPE)


async def _gridflow_error(request: Request, exc: GridflowError) -> JSONResponse:
    headers = {}
    if exc.status in (429, 503):
        headers["Retry-After"] = str(int(exc.details.get("retry_after") or 1))
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="gridflow"'
    return problem(request, exc.status, exc.code, exc.message, headers=headers, **exc.details)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem(request, 422, "request_invalid", f"the request is invalid: {where}", errors=errors)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
                           if exc.status_code in HTTPStatus._value2member_map_ else "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such resource: {request.url.path}"
    return problem(request, exc.status_code, code, detail, headers=getattr(exc, "headers", None))


async def _database_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
    if exc.cause is not None:  # a statement failed outside a use case that phrased it
        log.warning("database unavailable: %s", exc.cause)
    return await _gridflow_error(request, exc)


async def _data_refused(request: Request, exc: DataRefused) -> JSONResponse:
    log.warning("database refused request data: %s", exc.cause)
    return await _gridflow_error(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(request, 500, "internal_error", "an unexpected error occurred; it has been logged")


def install(api: FastAPI) -> None:
    api.add_exception_handler(GridflowError, _gridflow_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(StoreUnavailable, _database_down)
    api.add_exception_handler(DataRefused, _data_refused)
    api.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int, **codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route can answer with (and any other status as a problem);
    ``codes`` names the problem codes behind a status, e.g. \
``s409="action_not_allowed, version_conflict"``."""
    from .schemas import Problem

    out: dict[int | str, dict[str, Any]] = {}
    throttled = {429} if 401 in statuses else set()  # whoever authenticates can be throttled
    for status in sorted({*statuses, *throttled, 503}):
        phrase = HTTPStatus(status).phrase + (f": {codes[f's{status}']}" if f"s{status}" in codes else "")
        out[status] = {"model": Problem, "description": phrase,
                       "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    out["default"] = {"model": Problem, "description": "any other error, as problem details",
                      "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return out
