"""Where side effects go once they leave the outbox: the log, and an HTTP webhook.

A notifier raises :class:`DeliveryFailed` when the message did not get through;
the outbox dispatcher then tries again later with exponential backoff. Delivery
is at-least-once (a worker can die after sending and before recording it), so a
webhook carries an ``Idempotency-Key`` that receivers use to drop repeats.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import httpx

log = logging.getLogger("gridflow.notify")


class DeliveryFailed(Exception):
    """The notification did not get through; try again later."""


@dataclass(frozen=True)
class Message:
    """One outbox row as a notifier sees it."""

    outbox_id: int
    kind: str  # warned, breached, escalated, alert, assigned, supervised
    payload: Mapping[str, Any]
    attempt: int

    @property
    def case(self) -> str | None:
        return self.payload.get("case")


class Notifier(Protocol):
    name: str

    def send(self, message: Message) -> None: ...


class LogNotifier:
    """Writes each notification as a log record (one JSON line in production)."""

    name = "log"

    def send(self, message: Message) -> None:
        p = message.payload
        log.info("notification %s: %s", message.kind, p.get("message", ""),
                 extra={"case": message.case, "kind": message.kind, "unit": p.get("unit"),
                        "roles": p.get("roles"), "outbox_id": message.outbox_id, "attempt": message.attempt})


class WebhookNotifier:
    """POSTs each notification as JSON to one URL; any non-2xx answer or network error is a failure."""

    name = "webhook"

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


def notifiers_from_settings(settings: Any) -> list[Notifier]:
    """The log always; a webhook too when ``GRIDFLOW_WEBHOOK_URL`` is set."""
    out: list[Notifier] = [LogNotifier()]
    if settings.webhook_url:
        out.append(WebhookNotifier(settings.webhook_url))
    return out
