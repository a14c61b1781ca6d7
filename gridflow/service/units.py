"""The organisation tree (city → district → street → community → grid, plus departments), cached.

Units change rarely and are read on every action (escalation routing, scope
checks), so the tree is held in memory and reloaded after an admin change or
when it is older than ``ttl`` seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import sqlalchemy as sa

from ..adapters.geo import StrTreeLocator
from ..adapters.org_files import normalise_address
from ..adapters.orm import OrgAddress, Unit
from ..adapters.ports import Locator


@dataclass(frozen=True)
class UnitInfo:
    code: str
    name: str
    kind: str
    parent: str | None
    boundary_wkt: str | None = None
    #: gone from the organisation files: still named by cases and users, never offered or located in
    retired: bool = False


#: The kinds an address text may name, most precise first (a department is no place).
PLACE_KINDS = ("grid", "community", "street", "district")


class UnitDirectory:
    def __init__(self, ttl: float = 60.0, locator_factory: Callable[[Iterable[UnitInfo]], Locator] =
                 StrTreeLocator) -> None:
        self.ttl = ttl
        self._units: dict[str, UnitInfo] = {}
        self._addresses: list[tuple[str, str]] = []  # (normalised address, unit), longest first
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._locator_factory = locator_factory
        self._locator: Locator | None = None
        self._locator_units: dict[str, UnitInfo] | None = None
        self._locator_key: frozenset | None = None

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
                                          t.c.boundary_wkt, t.c.retired)).all()
            a = OrgAddress.__table__
            addresses = conn.execute(sa.select(a.c.address, a.c.unit_code)).all()
            self._units = {r[0]: UnitInfo(*r[:5], retired=bool(r[5])) for r in rows}
            self._addresses = sorted(((normalise_address(r[0]), r[1]) for r in addresses),
                                     key=lambda x: (-len(x[0]), x[0]))
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

    # --- locating a report ------------------------------------------------------------------------

    def locator(self) -> Locator:
        """The point locator of the organisation as loaded, rebuilt only when a boundary changed."""
        units = self._units
        if self._locator is None or self._locator_units is not units:
            key = frozenset((u.code, u.kind, u.boundary_wkt, u.retired) for u in units.values()
                            if u.boundary_wkt)
            if self._locator is None or key != self._locator_key:
                self._locator = self._locator_factory(list(units.values()))
                self._locator_key = key
            self._locator_units = units
        return self._locator

    def locate_point(self, lat: float, lon: float) -> tuple[str, str] | None:
        """(code, kind) of the grid (else street, else district) the point lies in."""
        return self.locator().locate(lat, lon)

    def locate_address(self, text: str | None) -> UnitInfo | None:
        """The unit an address names: the longest entry of the address table found in the text, else
        the longest name of a place (grid, community, street, district) found in it."""
        key = normalise_address(text or "")
        if not key:
            return None
        for address, code in self._addresses:
            unit = self.get(code)
            if address in key and unit is not None and not unit.retired:
                return unit
        places = [u for u in self._units.values() if u.kind in PLACE_KINDS and not u.retired
                  and normalise_address(u.name) in key]
        if not places:
            return None
        return min(places, key=lambda u: (-len(u.name), PLACE_KINDS.index(u.kind), u.code))

    def by_name(self, text: str) -> list[UnitInfo]:
        """Units in service a name picks: those with exactly this name, else those whose name contains
        it (``住建局`` → ``区住建局``), by code."""
        text = text.strip()
        live = [u for u in self._units.values() if not u.retired]
        exact = [u for u in live if u.name == text]
        found = exact or [u for u in live if text and text in u.name]
        return sorted(found, key=lambda u: u.code)
