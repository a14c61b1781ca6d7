"""Channels: signed case intake from other systems, outgoing webhook subscribers, dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ...service import channels
from . import API_PREFIX
from ..channel_schemas import (
    DeadLetterPublic, DeadLettersPublic, IntakeCase, IntakeFiled, IntakeSourceCreate, IntakeSourceIssued,
    IntakeSourcePublic, IntakeSourcesPublic, SourceName, WebhookCreate, WebhookIssued, WebhookPublic,
    WebhooksPublic,
)
from ..deps import AdminDep, ClientAddressDep, ServicesDep
from ..errors import responses

router = APIRouter(prefix=API_PREFIX, tags=["channels"])
_SIGNED = ("signature_missing, signature_invalid, timestamp_invalid, timestamp_stale, timestamp_future, "
           "intake_source_unknown, delivery_id_invalid")


@router.post("/intake/{source}", status_code=201, response_model=IntakeFiled,
             responses={200: {"model": IntakeFiled, "description": "a delivery id filed before: its case"},
                        **responses(401, 413, 422, s401=_SIGNED)},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": IntakeCase.model_json_schema(ref_template="#/components/schemas/{model}")}}}})
async def intake(request: Request, response: Response, svc: ServicesDep, address: ClientAddressDep,
                 source: Annotated[SourceName, Path()]) -> IntakeFiled:
    """File a case posted by another system, signed per Standard Webhooks with the source's secret
    (headers ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; docs/channels.md). The same
    ``webhook-id`` twice files one case: the second answer is 200 with that case and ``replayed``."""
    raw = await request.body()
    src, delivery = await run_in_threadpool(channels.verify_delivery, svc, source, dict(request.headers), raw,
                                            client=address)
    try:
        body = IntakeCase.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    result = await run_in_threadpool(channels.file_delivery, svc, src, delivery, raw, body.model_dump())
    if result.replayed:
        response.status_code = 200
    return IntakeFiled(number=result.number, state=result.state, replayed=result.replayed)


@router.post("/admin/intake-sources", status_code=201, response_model=IntakeSourceIssued,
             responses=responses(401, 403, 409, 422))
def create_intake_source(svc: ServicesDep, _: AdminDep, body: IntakeSourceCreate) -> IntakeSourceIssued:
    """Register a system that may post cases; the secret is in this response only."""
    made = channels.create_source(svc, body.name, workflow=body.workflow, reporter_id=body.reporter_id,
                                  role=body.role, unit=body.unit,
                                  channel=body.channel or body.name.replace("-", "_")[:32])
    public = IntakeSourcePublic.model_validate(made.source)
    return IntakeSourceIssued(**public.model_dump(), secret=made.secret)


@router.get("/admin/intake-sources", response_model=IntakeSourcesPublic, responses=responses(401, 403))
def list_intake_sources(svc: ServicesDep, _: AdminDep) -> IntakeSourcesPublic:
    """The intake sources (never their secrets)."""
    sources = channels.list_sources(svc)
    return IntakeSourcesPublic(data=[IntakeSourcePublic.model_validate(s) for s in sources])


@router.post("/admin/webhooks", status_code=201, response_model=WebhookIssued,
             responses=responses(401, 403, 422))
def create_webhook(svc: ServicesDep, _: AdminDep, body: WebhookCreate) -> WebhookIssued:
    """Subscribe a URL to case events (history event types, or ``*``); the secret is in this response
    only. Deliveries are signed like intake (Standard Webhooks), retried with backoff, dead-lettered."""
    made = channels.create_subscriber(svc, body.url, body.event_types, body.label)
    return WebhookIssued(**_webhook(made.subscriber).model_dump(), secret=made.secret)


@router.get("/admin/webhooks", response_model=WebhooksPublic, responses=responses(401, 403))
def list_webhooks(svc: ServicesDep, _: AdminDep) -> WebhooksPublic:
    """The subscribers (never their secrets), removed ones included (inactive)."""
    return WebhooksPublic(data=[_webhook(s) for s in channels.list_subscribers(svc)])


@router.delete("/admin/webhooks/{webhook_id}", status_code=204, response_class=Response,
               responses=responses(401, 403, 404, 422))
def remove_webhook(svc: ServicesDep, _: AdminDep,
                   webhook_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    """Stop sending to a subscriber (what is queued for it is dropped when its turn comes)."""
    channels.remove_subscriber(svc, webhook_id)
    return Response(status_code=204)


@router.get("/admin/dead-letters", response_model=DeadLettersPublic, responses=responses(401, 403))
def list_dead_letters(svc: ServicesDep, _: AdminDep) -> DeadLettersPublic:
    """Outbox rows given up after ``GRIDFLOW_OUTBOX_MAX_ATTEMPTS`` attempts, newest first (phones masked)."""
    letters = channels.list_dead_letters(svc)
    return DeadLettersPublic(data=[DeadLetterPublic.model_validate(d) for d in letters])


@router.post("/admin/dead-letters/{outbox_id}/retry", status_code=204, response_class=Response,
             responses=responses(401, 403, 404, 422))
def retry_dead_letter(svc: ServicesDep, _: AdminDep,
                      outbox_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    """Queue a dead letter again, now, with a fresh count of attempts."""
    channels.retry_dead_letter(svc, outbox_id)
    return Response(status_code=204)


def _webhook(sub) -> WebhookPublic:
    return WebhookPublic(id=sub.id, url=sub.url, event_types=list(sub.event_types), label=sub.label,
                         active=sub.active, created_at=sub.created_at)
