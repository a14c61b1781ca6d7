"""Residents' personal data: names, phone numbers and exact addresses (and exact coordinates) are shown
only to roles that must contact or visit the resident; exports always mask them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..engine.roles import CONTACT_ROLES
from .auth import Caller


_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?)(\d{3,4})(\d{4})(?!\d)")
_DIGITS = re.compile(r"\d+")


def sees_contact(caller: Caller | None) -> bool:
    return caller is not None and caller.role in CONTACT_ROLES


def mask_name(name: str | None) -> str | None:
    """李明 → 李*, 欧阳娜娜 → 欧***; an ASCII name keeps its first letter."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678; anything else keeps only its last four digits."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(0, len(digits) - 4) + digits[-4:] if len(digits) > 4 else "****"


def mask_address(address: str | None) -> str | None:
    """Keep the road or estate, hide the numbers: 海港路12号3单元501室 → 海港路**号*单元***室."""
    if not address:
        return address
    return _DIGITS.sub(lambda m: "*" * len(m.group()), address)


def mask_text(text: str | None) -> str | None:
    """Phone numbers inside free text (descriptions, replies) are masked too."""
    if not text:
        return text
    text = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


def mask_point(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    """About 100 m: enough to place a case in its grid, not at a door."""
    return (round(lat, 3) if lat is not None else None, round(lon, 3) if lon is not None else None)


def mask_value(value: Any) -> Any:
    """Free text anywhere in an event's data, recursively."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


@dataclass(frozen=True)
class Contact:
    name: str | None
    phone: str | None
    address: str | None
    lat: float | None
    lon: float | None
    description: str


def contact_for(caller: Caller | None, row: Any, *, export: bool = False) -> Contact:
    """The reporter's contact and the case's location as this caller (or an export) may see them."""
    if sees_contact(caller) and not export:
        return Contact(row.reporter_name, row.reporter_phone, row.address, row.lat, row.lon, row.description)
    lat, lon = mask_point(row.lat, row.lon)
    return Contact(mask_name(row.reporter_name), mask_phone(row.reporter_phone), mask_address(row.address),
                   lat, lon, mask_text(row.description) or "")


def events_for(caller: Caller | None, events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Event dicts with free-text phone numbers masked for callers who do not see contacts."""
    if sees_contact(caller):
        return [dict(e) for e in events]
    return [{**e, "data": mask_value(e.get("data") or {})} for e in events]
