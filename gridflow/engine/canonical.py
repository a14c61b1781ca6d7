"""Canonical JSON: one text for equal data, whatever order its keys were given in.

Content hashes of definitions, idempotency request hashes and the history hash chain are all taken
over this text, so it must never change: a different spelling would break every stored hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_hash(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()
