"""Where side effects go once they leave the outbox: the log, HTTP webhooks, the resident's phone.

A notifier raises :class:`DeliveryFailed` when the message did not get through;
the outbox dispatcher then tries again later with exponential backoff. Delivery
is at-least-once (a worker can die after sending and before recording it), so a
webhook carries an ``Idempotency-Key`` (a subscriber's, a ``webhook-id``) that receivers use to drop
repeats.

Each notifier serves one *audience* (:func:`audience_of` a row's kind): ``staff`` (warnings, breaches…
for units and roles), ``resident`` (``resident.*``: receipts, extensions, completion, rework, sent to the
phone the case was reported with) or ``subscriber`` (``webhook``: a case event for one subscriber). A
row goes only to the notifiers of its audience, so a resident's phone never reaches a staff webhook.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol

import httpx

from ..engine.masks import mask_phone
from ..engine.signing import signed_headers

log = logging.getLogger("gridflow.notify")


class DeliveryFailed(Exception):
    """The notification did not get through; try again later."""


@dataclass(frozen=True)
class Message:
    """One outbox row as a notifier sees it."""

    outbox_id: int
    kind: str  # warned, breached, escalated, alert, assigned, supervised; resident.*; webhook
    payload: Mapping[str, Any]
    attempt: int

    @property
    def case(self) -> str | None:
        return self.payload.get("case")


STAFF, RESIDENT, SUBSCRIBER = "staff", "resident", "subscriber"
#: Outbox kind of a case event queued for one webhook subscriber.
SUBSCRIBER_KIND = "webhook"


def audience_of(kind: str) -> str:
    if kind.startswith("resident."):
        return RESIDENT
    return SUBSCRIBER if kind == SUBSCRIBER_KIND else STAFF


class Notifier(Protocol):
    name: str
    #: ``staff``, ``resident`` or ``subscriber`` (a notifier without one serves staff).
    audience: str

    def send(self, message: Message) -> None: ...


def _data(message: Message) -> Mapping[str, Any]:
    return message.payload.get("data") or {}


def serves(notifier: Notifier, message: Message) -> bool:
    return getattr(notifier, "audience", STAFF) == audience_of(message.kind)


class LogNotifier:
    """Writes each notification as a log record (one JSON line in production)."""

    name = "log"
    audience = STAFF

    def send(self, message: Message) -> None:
        p = message.payload
        log.info("notification %s: %s", message.kind, p.get("message", ""),
                 extra={"case": message.case, "kind": message.kind, "unit": p.get("unit"),
                        "roles": p.get("roles"), "outbox_id": message.outbox_id, "attempt": message.attempt})


class WebhookNotifier:
    """POSTs each notification as JSON to one URL; any non-2xx answer or network error is a failure."""

    name = "webhook"
    audience = STAFF

    def __init__(self, url: str, *, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=timeout)

    def send(self, message: Message) -> None:
        body = {"id": message.outbox_id, "kind": message.kind, **dict(message.payload)}
        headers = {"Idempotency-Key": f"gridflow-outbox-{message.outbox_id}", "User-Agent": "gridflow"}
        try:
            response = self.client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook {self.url} unreachable: {exc!r}") from exc
        if response.status_code >= 300:
            raise DeliveryFailed(f"webhook {self.url} answered {response.status_code}: {response.text[:200]}")

    def close(self) -> None:
        self.client.close()


# --- the resident: SMS (a generic HTTP gateway), WeChat, or the log --------------------------------


class ResidentLogNotifier:
    """Logs what the resident would be told, the phone masked (development, or no gateway yet)."""

    name = "resident-log"
    audience = RESIDENT

    def send(self, message: Message) -> None:
        p = message.payload
        phone = mask_phone(_data(message).get("phone"))
        log.info("resident notice %s to %s: %s", message.kind, phone, p.get("message", ""),
                 extra={"case": message.case, "kind": message.kind, "phone": phone,
                        "outbox_id": message.outbox_id, "attempt": message.attempt})


class SmsGatewayNotifier:
    """Sends resident notices through a generic HTTP SMS gateway.

    POSTs JSON ``{"phone", "text", "id"}`` to ``url`` (``Authorization: Bearer <token>`` when a token
    is set, ``Idempotency-Key`` as for webhooks); ``text`` is ``template`` filled with ``{message}``,
    ``{signature}`` (the SMS 签名), ``{number}`` (the case) and ``{kind}``. Any non-2xx answer or network
    error is a failure (retried). A provider with another request shape plugs in its own class with the
    same ``send``; a WeChat template-message sender would be one more (audience ``resident``)."""

    name = "sms"
    audience = RESIDENT

    def __init__(self, url: str, *, template: str = "【{signature}】{message}", signature: str = "网格通",
                 token: str | None = None, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        self.url, self.template, self.signature, self.token = url, template, signature, token
        self.client = client or httpx.Client(timeout=timeout)

    def text(self, message: Message) -> str:
        p = message.payload
        return self.template.format(message=p.get("message", ""), signature=self.signature,
                                    number=message.case or "", kind=message.kind.removeprefix("resident."))

    def send(self, message: Message) -> None:
        phone = _data(message).get("phone")
        if not phone:
            log.warning("resident notice %s of case %s has no phone: dropped", message.kind, message.case,
                        extra={"case": message.case, "outbox_id": message.outbox_id})
            return
        headers = {"Idempotency-Key": f"gridflow-outbox-{message.outbox_id}", "User-Agent": "gridflow"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = {"phone": phone, "text": self.text(message), "id": f"gridflow-outbox-{message.outbox_id}"}
        try:
            response = self.client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"SMS gateway unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise DeliveryFailed(f"SMS gateway answered {response.status_code}")
        log.info("resident notice %s sent by SMS to %s", message.kind, mask_phone(phone),
                 extra={"case": message.case, "kind": message.kind, "outbox_id": message.outbox_id})

    def close(self) -> None:
        self.client.close()


# --- subscribers: signed case events -------------------------------------------------------------


class SubscriberWebhookNotifier:
    """POSTs a case event to the subscriber its row names, signed (Standard Webhooks, see
    :mod:`gridflow.engine.signing`) with that subscriber's secret, read when sending (a subscriber
    removed meanwhile gets nothing). ``webhook-id`` is ``gf_<outbox id>``, the same on every retry."""

    name = "subscriber-webhook"
    audience = SUBSCRIBER

    def __init__(self, subscriber: Callable[[int], Any], *, timeout: float = 5.0,
                 client: httpx.Client | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.subscriber = subscriber  # id -> Subscriber | None (adapters.channels, on its own connection)
        self.client = client or httpx.Client(timeout=timeout)
        self.now = now

    def send(self, message: Message) -> None:
        data = _data(message)
        sub = self.subscriber(int(data.get("subscriber_id") or 0))
        if sub is None or not sub.active:
            log.info("webhook subscriber %s is gone: event dropped", data.get("subscriber_id"),
                     extra={"case": message.case, "outbox_id": message.outbox_id})
            return
        body = json.dumps(data.get("event") or {}, ensure_ascii=False, separators=(",", ":"),
                          sort_keys=True).encode()
        delivery = f"gf_{message.outbox_id}"
        headers = {"Content-Type": "application/json", "User-Agent": "gridflow", "Idempotency-Key": delivery,
                   **signed_headers(sub.secret, delivery, self.now(), body)}
        try:
            response = self.client.post(sub.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"subscriber {sub.id} unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise DeliveryFailed(f"subscriber {sub.id} answered {response.status_code}")

    def close(self) -> None:
        self.client.close()


def notifiers_from_settings(settings: Any, subscriber: Callable[[int], Any] | None = None) -> list[Notifier]:
    """The log always; a webhook too when ``GRIDFLOW_WEBHOOK_URL`` is set; for residents the SMS gateway
    when ``GRIDFLOW_SMS_GATEWAY_URL`` is set, else the (masked) log; for subscribers the signed webhook
    sender when ``subscriber`` (a look-up by id) is given."""
    out: list[Notifier] = [LogNotifier()]
    if settings.webhook_url:
        out.append(WebhookNotifier(settings.webhook_url))
    sms_url = getattr(settings, "sms_gateway_url", None)
    if sms_url:
        out.append(SmsGatewayNotifier(sms_url, template=settings.sms_template,
                                      signature=settings.sms_signature, token=settings.sms_gateway_token))
    else:
        out.append(ResidentLogNotifier())
    if subscriber is not None:
        out.append(SubscriberWebhookNotifier(subscriber))
    return out
