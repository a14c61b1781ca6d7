"""Hash-chained history: each event's hash covers the previous hash and a canonical JSON of the event.

Editing, inserting, deleting or reordering any event breaks every hash after
it, and the case row's ``last_hash`` pins the head of the chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from ..engine.canonical import canonical_json

GENESIS = "0" * 64


def canonical(seq: int, type_: str, actor: str, role: str, at: datetime, data: Any) -> str:
    body = {"seq": seq, "type": type_, "actor": actor, "role": role,
            "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds"), "data": data or {}}
    return canonical_json(body)


def chain_hash(prev_hash: str, seq: int, type_: str, actor: str, role: str, at: datetime, data: Any) -> str:
    return hashlib.sha256((prev_hash + canonical(seq, type_, actor, role, at, data)).encode()).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    number: str
    ok: bool
    events: int
    broken_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "ok": self.ok, "events": self.events, "broken_seq": self.broken_seq,
                "reason": self.reason}


def verify(number: str, rows: Iterable[Any], last_hash: str | None = None) -> ChainReport:
    """Check a case's events in ``seq`` order; name the first broken link."""
    prev = GENESIS
    count = 0
    for expected_seq, row in enumerate(rows, start=1):
        count += 1
        if row.seq != expected_seq:
            return ChainReport(number, False, count, expected_seq,
                               f"event {expected_seq} is missing (found {row.seq})")
        if row.prev_hash != prev:
            return ChainReport(number, False, count, row.seq,
                               "prev_hash does not match the previous event's hash")
        digest = chain_hash(prev, row.seq, row.type, row.actor, row.role, row.at, row.data)
        if digest != row.hash:
            return ChainReport(number, False, count, row.seq, "content does not match its hash (edited)")
        prev = row.hash
    if last_hash is not None and last_hash != prev:
        return ChainReport(number, False, count, count + 1 if count else 1,
                           "the case's chain head does not match its last event (events removed or added)")
    return ChainReport(number, True, count)
