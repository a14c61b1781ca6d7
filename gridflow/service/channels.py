"""Channels: signed webhooks in (intake sources), signed webhooks out (subscribers), and the resident.

*In*: a source posts a case signed with its own secret (Standard Webhooks, :mod:`gridflow.engine.signing`);
a bad or missing signature, or a timestamp outside five minutes, is refused (401) and logged without
the secret or the body; the delivery id is the report's idempotency key, so a delivery sent twice files
one case. Cases are filed by :func:`gridflow.service.intake.report_case`, like every channel's.

*Out* and *the resident*: :func:`outbound` is called by ``recording.apply_decision`` for every change,
inside its unit of work, and returns the outbox rows the change calls for — one per subscriber that
chose an event type written, and the resident's notices (:mod:`gridflow.engine.resident_notices`) when
the case has a phone — so they commit with the change or not at all.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from ..adapters import channels as sql
from ..engine.case import Actor
from ..engine.errors import ConcurrentWrite, GridflowError, NotFound, PayloadInvalid
from ..engine.roles import REPORTER_ROLES
from ..engine.signing import SignatureRefused, SignedDelivery, new_secret, verify
from .admin import AlreadyExists
from .context import Services
from .intake import ReportCase, report_case
from .masking import mask_phone
from .recording import ActionResult

log = logging.getLogger("gridflow.channels")

_EVENT_TYPE = re.compile(r"^(\*|[A-Z][A-Za-z]{2,63})$")


class SignatureRejected(GridflowError):
    """A signed request refused (401); ``code`` says why (see ``engine.signing.SignatureRefused``)."""

    code = "signature_invalid"
    status = 401

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


# --- intake sources -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceCreated:
    source: sql.Source
    secret: str  # shown once


def create_source(svc: Services, name: str, *, workflow: str, reporter_id: str, role: str,
                  unit: str | None = None, channel: str | None = None) -> SourceCreated:
    """Register a system that may post cases; its secret is generated, answered here and never again."""
    if role not in REPORTER_ROLES:
        raise PayloadInvalid(f"role {role!r} may not report cases (one of {', '.join(REPORTER_ROLES)})",
                             fields={"role": role})
    svc.catalog.newest(workflow)  # an unknown workflow is refused now, not at the first delivery
    secret = new_secret()
    source = sql.Source(name, secret, workflow, reporter_id, role, unit, channel or name, True,
                        svc.clock.now())
    with svc.uow() as uow:
        svc.units.refresh(uow.connection)
        if unit is not None and svc.units.get(unit) is None:
            raise PayloadInvalid(f"unit {unit!r} does not exist", fields={"unit": unit})
        if not sql.add_source(uow.connection, source):
            raise AlreadyExists(f"intake source {name!r} already exists", name=name)
        uow.commit()
    log.info("intake source %s created", name, extra={"source": name})
    return SourceCreated(source, secret)


def list_sources(svc: Services) -> list[sql.Source]:
    with svc.uow(write=False) as uow:
        return sql.list_sources(uow.connection)


def verify_delivery(svc: Services, name: str, headers: Mapping[str, str], body: bytes, *,
                    client: str = "unknown",
                    now: datetime | None = None) -> tuple[sql.Source, SignedDelivery]:
    """The source and the delivery if ``body`` is signed by source ``name`` within the window, else
    401 :class:`SignatureRejected` (logged: source, delivery id, code, client; never body or secret).

    The window is against real time (``now``), whatever the case clock: the sender's clock is real."""
    with svc.uow(write=False) as uow:
        source = sql.get_source(uow.connection, name)
    delivery_id = next((v for k, v in headers.items() if k.lower() == "webhook-id"), None)
    extra = {"source": name, "delivery": (delivery_id or "")[:100], "client": client}
    if source is None or not source.active:
        log.warning("intake refused: unknown source %r", name,
                    extra={**extra, "code": "intake_source_unknown"})
        raise SignatureRejected("intake_source_unknown", f"no active intake source {name!r}")
    try:
        delivery = verify(source.secret, headers, body, now or datetime.now(timezone.utc))
    except SignatureRefused as exc:
        log.warning("intake refused from source %s: %s", name, exc.code, extra={**extra, "code": exc.code})
        raise SignatureRejected(exc.code, exc.message) from None
    if len(delivery.id) > 100:
        raise SignatureRejected("delivery_id_invalid", "webhook-id is longer than 100 characters")
    return source, delivery


def file_delivery(svc: Services, source: sql.Source, delivery: SignedDelivery, body: bytes,
                  fields: Mapping[str, Any]) -> ActionResult:
    """File a verified delivery as a case, once per delivery id (``replayed`` the second time)."""
    key = f"intake:{source.name}:{delivery.id}"
    workflow = fields.get("workflow") or source.workflow
    reporter = fields.get("reporter") or {}
    location = fields.get("location") or {}
    cmd = ReportCase(
        workflow=workflow, reporter=Actor(source.reporter_id, source.role, source.unit),
        category=fields.get("category", ""), title=fields.get("title", ""),
        description=fields.get("description", ""), unit=fields.get("unit"), lat=location.get("lat"),
        lon=location.get("lon"), address=location.get("address"), reporter_name=reporter.get("name"),
        reporter_phone=reporter.get("phone"), attachments=tuple(fields.get("attachments") or ()),
        channel=source.channel, data=fields.get("data") or {}, confidential=bool(fields.get("confidential")),
        idempotency_key=key, request_hash=hashlib.sha256(body).hexdigest())
    try:
        result = report_case(svc, cmd)
    except ConcurrentWrite:  # the same delivery, filed meanwhile by a concurrent request: answer as it did
        result = report_case(svc, cmd)
    log.info("intake from source %s filed case %s%s", source.name, result.number,
             " (replayed delivery)" if result.replayed else "",
             extra={"source": source.name, "delivery": delivery.id, "case": result.number})
    return result


# --- webhook subscribers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SubscriberCreated:
    subscriber: sql.Subscriber
    secret: str  # shown once


def create_subscriber(svc: Services, url: str, event_types: Sequence[str],
                      label: str = "") -> SubscriberCreated:
    bad = [t for t in event_types if not _EVENT_TYPE.match(t)]
    if not event_types or bad:
        raise PayloadInvalid("event_types: name history event types (CaseReported, ActionTaken, CaseClosed…) "
                             "or '*' for all", fields={"event_types": bad or "empty"})
    if not re.match(r"^https?://", url):
        raise PayloadInvalid("url must be http(s)", fields={"url": "not http(s)"})
    secret = new_secret()
    with svc.uow() as uow:
        sub = sql.add_subscriber(uow.connection, url, secret, list(dict.fromkeys(event_types)), label,
                                 svc.clock.now())
        uow.commit()
    return SubscriberCreated(sub, secret)


def list_subscribers(svc: Services) -> list[sql.Subscriber]:
    with svc.uow(write=False) as uow:
        return sql.list_subscribers(uow.connection)


def remove_subscriber(svc: Services, subscriber_id: int) -> None:
    """Stop sending to a subscriber (kept, inactive: its dead letters still name it)."""
    with svc.uow() as uow:
        if not sql.deactivate_subscriber(uow.connection, subscriber_id):
            raise NotFound(f"no webhook subscriber {subscriber_id}", id=subscriber_id)
        uow.commit()


# --- dead letters ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeadLetter:
    id: int
    kind: str
    case: str | None
    subscriber_id: int | None
    event_type: str | None
    attempts: int
    created_at: datetime
    failed_at: datetime
    last_error: str | None
    #: For a resident notice, the phone masked.
    to: str | None


def list_dead_letters(svc: Services, limit: int = 100) -> list[DeadLetter]:
    with svc.uow(write=False) as uow:
        rows = sql.dead_letters(uow.connection, limit=limit)
    out = []
    for r in rows:
        payload = r.payload or {}
        data = payload.get("data") or {}
        event = data.get("event") or {}
        out.append(DeadLetter(r.id, r.kind, payload.get("case"), data.get("subscriber_id"), event.get("type"),
                              r.attempts, r.created_at, r.next_attempt_at, r.last_error,
                              mask_phone(data.get("phone")) if data.get("phone") else None))
    return out


def retry_dead_letter(svc: Services, outbox_id: int) -> None:
    """Send a dead letter again: pending now, with a fresh count of attempts."""
    with svc.uow() as uow:
        if not sql.retry_dead_letter(uow.connection, outbox_id, svc.clock.now()):
            raise NotFound(f"no dead letter {outbox_id}", id=outbox_id)
        uow.commit()
    log.info("dead letter %s queued again", outbox_id, extra={"outbox_id": outbox_id})
