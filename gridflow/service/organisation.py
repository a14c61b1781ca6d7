"""The organisation loaded from files (网格化管理): check them, load them atomically, record what changed.

The files together are the whole organisation. A load is one unit of work: every unit is added, renamed,
moved or reshaped, every unit the files no longer contain is retired (never deleted: cases, users and
history still name it), the address table is replaced, and the diff is written to ``org_changes`` — or,
when anything is invalid, nothing changes at all. Cases are never rewritten: an open case keeps its grid
until a dispatcher moves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

from sqlmodel import select

from ..adapters.org_files import AREA_TOLERANCE, OrgPlan, PlannedUnit, check, read_org_files
from ..adapters.orm import OrgAddress, OrgChange, Unit
from ..engine.errors import UnitAmbiguous
from .context import Services

_DEPTH = {"city": 0, "district": 1, "street": 2, "community": 3, "grid": 4, "department": 5}


@dataclass(frozen=True)
class OrgChangeView:
    id: int
    at: datetime
    actor: str
    source: str
    diff: Mapping[str, Any]

    @property
    def summary(self) -> str:
        return summarise(self.diff)


def summarise(diff: Mapping[str, Any]) -> str:
    parts = [f"{len(diff[k])} {k}" for k in ("added", "renamed", "moved", "reshaped", "retired", "restored")
             if diff.get(k)]
    addresses = diff.get("addresses") or {}
    parts += [f"{n} address(es) {k}" for k, n in addresses.items() if n]
    return ", ".join(parts) or "no change"


def check_org_files(paths: Iterable[str | Path], tolerance: float = AREA_TOLERANCE) -> OrgPlan:
    """The organisation the files describe; OrganisationInvalid lists every problem (file and line, or
    feature) when anything is wrong."""
    return check(read_org_files(paths), tolerance)


def load_org_files(svc: Services, paths: Iterable[str | Path], actor: str) -> OrgChangeView | None:
    """Check and load; the recorded change, or None when the files say what the database already holds."""
    return apply_org_plan(svc, check_org_files(paths), actor)


def apply_org_plan(svc: Services, plan: OrgPlan, actor: str) -> OrgChangeView | None:
    with svc.uow() as uow:
        view = record_org_plan(svc, uow, plan, actor)
        if view is None:
            return None
        uow.commit()
    svc.units.invalidate()
    return view


def record_org_plan(svc: Services, uow: Any, plan: OrgPlan, actor: str) -> OrgChangeView | None:
    """Write the plan inside the caller's unit of work (which commits, then invalidates ``svc.units``)."""
    session = uow.session
    stored = {u.code: u for u in session.exec(select(Unit))}
    diff = _apply_units(session, plan, stored)
    diff["addresses"] = _apply_addresses(session, plan.addresses)
    if summarise(diff) == "no change":
        return None
    row = OrgChange(at=svc.clock.now(), actor=actor[:64], source=plan.source,
                    diff={k: v for k, v in diff.items() if v})
    session.add(row)
    session.flush()
    return _view(row)


def _apply_units(session, plan: OrgPlan, stored: dict[str, Unit]) -> dict[str, Any]:
    diff: dict[str, list] = {k: [] for k in ("added", "renamed", "moved", "reshaped", "retired", "restored")}
    depth = None
    for p in sorted(plan.units.values(), key=lambda u: (_DEPTH.get(u.kind, 9), u.code)):
        if depth != _DEPTH.get(p.kind, 9):
            session.flush()  # the units of a level are written before their children name them
            depth = _DEPTH.get(p.kind, 9)
        row = stored.get(p.code)
        if row is None:
            session.add(Unit(code=p.code, name=p.name, kind=p.kind, parent_code=p.parent,
                             boundary_wkt=p.boundary_wkt))
            diff["added"].append({"code": p.code, "name": p.name, "kind": p.kind, "parent": p.parent})
            continue
        _update(row, p, diff)
        session.add(row)
    for code, row in sorted(stored.items()):
        if code not in plan.units and not row.retired:
            row.retired = True
            session.add(row)
            diff["retired"].append({"code": code, "name": row.name, "kind": row.kind})
    session.flush()
    return diff


def _update(row: Unit, p: PlannedUnit, diff: dict[str, list]) -> None:
    if row.retired:
        row.retired = False
        diff["restored"].append({"code": p.code, "name": p.name})
    if row.name != p.name:
        diff["renamed"].append({"code": p.code, "from": row.name, "to": p.name})
        row.name = p.name
    if row.parent_code != p.parent or row.kind != p.kind:
        diff["moved"].append({"code": p.code, "from": row.parent_code, "to": p.parent,
                              **({"kind": p.kind} if row.kind != p.kind else {})})
        row.parent_code, row.kind = p.parent, p.kind
    if (row.boundary_wkt or None) != p.boundary_wkt and not _same_shape(row.boundary_wkt, p.boundary_wkt):
        diff["reshaped"].append({"code": p.code})
        row.boundary_wkt = p.boundary_wkt


def _same_shape(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    from shapely import wkt

    try:
        return wkt.loads(a).equals_exact(wkt.loads(b), 1e-12)
    except Exception:  # an unreadable stored boundary is replaced
        return False


def _apply_addresses(session, addresses: Mapping[str, str]) -> dict[str, int]:
    stored = {a.address: a for a in session.exec(select(OrgAddress))}
    counts = {"added": 0, "changed": 0, "removed": 0}
    for address, row in stored.items():
        if address not in addresses:
            session.delete(row)
            counts["removed"] += 1
        elif row.unit_code != addresses[address]:
            row.unit_code = addresses[address]
            session.add(row)
            counts["changed"] += 1
    for address, unit in addresses.items():
        if address not in stored:
            session.add(OrgAddress(address=address, unit_code=unit))
            counts["added"] += 1
    session.flush()
    return {k: n for k, n in counts.items() if n}


def list_org_changes(svc: Services, limit: int = 100) -> list[OrgChangeView]:
    """The organisation's changes, newest first."""
    with svc.uow(write=False) as uow:
        rows = uow.session.exec(select(OrgChange).order_by(OrgChange.id.desc()).limit(limit))  # type: ignore[union-attr]
        return [_view(r) for r in rows]


def _view(row: OrgChange) -> OrgChangeView:
    return OrgChangeView(row.id or 0, row.at, row.actor, row.source, dict(row.diff or {}))


# --- units picked by name ---------------------------------------------------------------------

def unit_code_for(svc: Services, text: str, field: str) -> str:
    """A unit given by code or by name (``住建局``, ``区住建局``): its code. An unknown text is returned as
    given (the reference check refuses it); a name several units answer to is refused, with them listed."""
    text = text.strip()
    if svc.units.get(text) is not None:
        return text
    found = svc.units.by_name(text)
    if len(found) == 1:
        return found[0].code
    if not found:
        return text
    candidates = [{"code": u.code, "name": u.name, "kind": u.kind} for u in found[:20]]
    raise UnitAmbiguous(
        f"{field}: {text!r} names {len(found)} units: "
        + ", ".join(f"{u.name} ({u.code})" for u in found[:20]) + "; give one of their codes",
        fields={field: f"ambiguous: {len(found)} units answer to {text!r}"}, candidates=candidates)


def resolve_unit_names(svc: Services, fields: Iterable[Any],
                       payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with every unit field (``unit``, ``units``) given by name replaced by the unit's code."""
    out = dict(payload)
    for f in fields:
        value = payload.get(f.name)
        if f.type == "unit" and isinstance(value, str) and value.strip():
            out[f.name] = unit_code_for(svc, value, f.name)
        elif f.type == "units" and isinstance(value, (list, tuple)):
            out[f.name] = [unit_code_for(svc, v, f.name) if isinstance(v, str) and v.strip() else v
                           for v in value]
    return out

