"""Webhook signatures, in and out: the Standard Webhooks scheme (https://www.standardwebhooks.com).

Three headers: ``webhook-id`` (the delivery id, the same on every retry), ``webhook-timestamp`` (Unix
seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over ``id + "." + timestamp + "." + body``
with the secret's bytes (``whsec_<base64>``). Several space-separated signatures may be sent (a secret
being rotated); one matching is enough. A timestamp more than five minutes away from now is refused
either way, so a captured request cannot be replayed later. Pure: ``now`` is given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"


class SignatureRefused(Exception):
    """Why a signed request is refused: ``code`` is stable (``signature_missing``, ``signature_invalid``,
    ``timestamp_invalid``, ``timestamp_stale``, ``timestamp_future``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_secret() -> str:
    """A fresh secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw + "==")
    except (binascii.Error, ValueError):
        return raw.encode()


def sign(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one delivery."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, delivery_id: str, now: datetime, body: bytes) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {ID_HEADER: delivery_id, TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, delivery_id, timestamp, body)}


@dataclass(frozen=True)
class SignedDelivery:
    id: str
    timestamp: int


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime,
           tolerance_s: int = TOLERANCE_S) -> SignedDelivery:
    """The delivery, if ``headers`` sign ``body`` with ``secret`` now; else :class:`SignatureRefused`.
    ``headers`` are looked up in lower case (HTTP header names are case-insensitive)."""
    h = {k.lower(): v for k, v in headers.items()}
    delivery_id, stamp, signature = h.get(ID_HEADER), h.get(TIMESTAMP_HEADER), h.get(SIGNATURE_HEADER)
    if not (delivery_id and stamp and signature):
        missing = [n for n, v in ((ID_HEADER, delivery_id), (TIMESTAMP_HEADER, stamp),
                                  (SIGNATURE_HEADER, signature)) if not v]
        raise SignatureRefused("signature_missing", f"missing header(s): {', '.join(missing)}")
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureRefused("timestamp_invalid", f"{TIMESTAMP_HEADER} must be Unix seconds")
    timestamp = int(stamp)
    skew = timestamp - now.timestamp()
    if skew < -tolerance_s:
        raise SignatureRefused("timestamp_stale", f"{TIMESTAMP_HEADER} is more than {tolerance_s}s old")
    if skew > tolerance_s:
        raise SignatureRefused("timestamp_future",
                               f"{TIMESTAMP_HEADER} is more than {tolerance_s}s in the future")
    expected = sign(secret, delivery_id, timestamp, body).encode()
    matched = False
    for candidate in signature.split(" ")[:8]:
        # compare every candidate in constant time (no early exit on the first match either)
        matched |= hmac.compare_digest(expected, candidate.strip().encode())
    if not matched:
        raise SignatureRefused("signature_invalid", f"{SIGNATURE_HEADER} does not match the body")
    return SignedDelivery(delivery_id, timestamp)
