"""Masks shared by every layer that writes contact data somewhere people read (logs, notices).

``service.masking`` decides who sees what and masks free text; adapters (a notifier logging the phone it
sent an SMS to) may not import the service layer, so the contact masks they need live here.
"""

from __future__ import annotations

import re


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678; anything else keeps only its last four digits."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(0, len(digits) - 4) + digits[-4:] if len(digits) > 4 else "****"
