"""The organisation tree (city → district → street → community → grid, plus departments), cached.

Units change rarely and are read on every action (escalation routing, scope
checks), so the tree is held in memory and reloaded after an admin change or
when it is older than ``ttl`` seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from ..adapters.orm import Unit


@dataclass(frozen=True)
class UnitInfo:
    code: str
    name: str
    kind: str
    parent: str | None
    boundary_wkt: str | None = None


class UnitDirectory:
    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._units: dict[str, UnitInfo] = {}
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    def refresh(self, conn, force: bool = False) -> None:
        """Reload the tree over ``conn`` (a connection or session) if stale (admin change, or \
``ttl`` passed)."""
        if not force and self._units and time.monotonic() - self._loaded_at < self.ttl:
            return
        if not isinstance(conn, sa.Connection):
            conn = conn.connection()
        t = Unit.__table__
        with self._lock:
            rows = conn.execute(sa.select(t.c.code, t.c.name, t.c.kind, t.c.parent_code,
                                          t.c.boundary_wkt)).all()
            self._units = {r[0]: UnitInfo(*r) for r in rows}
            self._loaded_at = time.monotonic()

    def get(self, code: str | None) -> UnitInfo | None:
        return self._units.get(code) if code else None

    def all(self) -> list[UnitInfo]:
        return list(self._units.values())

    def ancestors(self, code: str | None) -> list[UnitInfo]:
        """The unit itself, then its parent, up to the root."""
        out: list[UnitInfo] = []
        seen: set[str] = set()
        unit = self.get(code)
        while unit is not None and unit.code not in seen:
            out.append(unit)
            seen.add(unit.code)
            unit = self.get(unit.parent)
        return out

    def ancestor_of_kind(self, code: str | None, kind: str) -> UnitInfo | None:
        return next((u for u in self.ancestors(code) if u.kind == kind), None)

    def is_within(self, code: str | None, ancestor: str | None) -> bool:
        return ancestor is not None and any(u.code == ancestor for u in self.ancestors(code))

    def scope_codes(self, code: str | None) -> dict[str, str | None]:
        """The community, street and district a unit lies in (for scope columns)."""
        return {k: (u.code if (u := self.ancestor_of_kind(code, k)) else None)
                for k in ("community", "street", "district")}
