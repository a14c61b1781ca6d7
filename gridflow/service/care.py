"""The care register (特殊群体台账) and its monthly visit rate (月探访率).

Each person under care is one row of ``care_people`` keyed by the register's own id, and one long-running
``special_care_visit`` case opened through intake (:func:`gridflow.service.intake.report_case`, never
written any other way). Registering the same id again updates the person and opens nothing new, so
re-loading a file is idempotent. Which visit kinds count for which group is the city's rule
(:data:`UNCOUNTED_KINDS`, overridable in settings as ``care_uncounted_kinds``), written into the case's
data where the workflow's ``stay`` route reads it.

The visit rate of a month is computed from history (the visit deadline's ``DeadlineStarted``,
``DeadlineStopped`` and ``DeadlineBreached`` events), never from where cases are now: see
docs/care-visits.md.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Mapping

import sqlalchemy as sa
from sqlmodel import select

from ..adapters.orm import CarePerson, CaseRow, EventRow
from ..engine.calendar import LOCAL_ZONE
from ..engine.case import Actor
from ..engine.errors import Forbidden, PayloadInvalid
from .auth import Caller
from .context import Services
from .intake import ReportCase, report_case
from .masking import mask_address, mask_name, mask_phone, sees_contact

WORKFLOW = "special_care_visit"
VISIT_TIMER = "visit"
#: Group types of the register (中文 as the documents name them, the English beside).
GROUP_TYPES: Mapping[str, str] = {
    "独居": "living alone", "空巢": "empty nest", "失能": "disabled (loss of capacity)",
    "计生特殊家庭": "family that lost its only child", "特殊困难残疾人": "disabled person in difficulty",
    "困境儿童": "child in difficulty", "留守老人": "left-behind elderly", "留守儿童": "left-behind child",
}
#: The catalogue category each group's visit case is filed under (G04 特殊人群: docs/categories.md).
GROUP_CATEGORY: Mapping[str, str] = {
    "独居": "G0401", "空巢": "G0401", "失能": "G0401", "计生特殊家庭": "G0401", "留守老人": "G0401",
    "特殊困难残疾人": "G0402", "困境儿童": "G0403", "留守儿童": "G0403",
}
#: Visit frequencies the shipped workflow counts (one visit per calendar month).
FREQUENCIES = ("monthly",)
#: The default rule: visit kinds that do not count as a visit, per group (a phone call is no visit for
#: someone who cannot look after themselves).
UNCOUNTED_KINDS: Mapping[str, tuple[str, ...]] = {"失能": ("phone",), "特殊困难残疾人": ("phone",)}
CSV_COLUMNS = ("register_id", "name", "id_number", "phone", "address", "group_type", "grid", "worker",
               "frequency")
_REQUIRED = ("register_id", "name", "group_type", "grid")
_ID_NUMBER = re.compile(r"^\d{17}[\dXx]$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_HISTORY = ("DeadlineStarted", "DeadlineStopped", "DeadlineBreached", "DeadlineResumed")


@dataclass(frozen=True)
class CareEntry:
    register_id: str
    name: str
    group_type: str
    grid: str
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None
    worker: str | None = None
    frequency: str = "monthly"


@dataclass
class LoadResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def problems_of(svc: Services, e: CareEntry) -> dict[str, str]:
    """What is wrong with one entry (field -> message); empty when it can be registered."""
    out: dict[str, str] = {}
    for name in _REQUIRED:
        if not str(getattr(e, name) or "").strip():
            out[name] = "required"
    if e.register_id and (len(e.register_id) > 64 or not re.fullmatch(r"[\w.-]+", e.register_id)):
        out["register_id"] = "letters, digits, '.', '-' or '_', at most 64"
    if e.group_type and e.group_type not in GROUP_TYPES:
        out["group_type"] = f"unknown group {e.group_type!r} (known: {', '.join(GROUP_TYPES)})"
    if e.frequency not in FREQUENCIES:
        out["frequency"] = f"unknown frequency {e.frequency!r} (counted: {', '.join(FREQUENCIES)})"
    if e.id_number and not _ID_NUMBER.match(e.id_number):
        out["id_number"] = "an 18-character resident ID number"
    if e.grid:
        unit = svc.units.get(e.grid)
        if unit is None or unit.kind != "grid":
            out["grid"] = f"unknown grid {e.grid!r}"
    for name, limit in (("name", 100), ("phone", 32), ("address", 300)):
        if len(getattr(e, name) or "") > limit:
            out[name] = f"at most {limit} characters"
    return out


def uncounted_kinds(svc: Services, group: str) -> list[str]:
    rule = getattr(svc.settings, "care_uncounted_kinds", None) or UNCOUNTED_KINDS
    return list(rule.get(group, ()))


def register(svc: Services, entry: CareEntry, by: Actor) -> tuple[CarePerson, str]:
    """Register (or update) one person; open their visit case when they have none yet. Returns the row
    and what happened: ``created``, ``updated`` or ``unchanged``."""
    _refresh(svc)
    problems = problems_of(svc, entry)
    if problems:
        raise PayloadInvalid(f"care register entry {entry.register_id or '?'} is invalid: "
                             + "; ".join(f"{k}: {v}" for k, v in problems.items()), fields=problems)
    now = svc.clock.now()
    values = {"name": entry.name, "id_number": entry.id_number or None, "phone": entry.phone or None,
              "address": entry.address or None, "group_type": entry.group_type, "grid_code": entry.grid,
              "worker_id": entry.worker or None, "frequency": entry.frequency}
    with svc.uow() as uow:
        row = uow.session.get(CarePerson, entry.register_id)
        if row is None:
            row = CarePerson(register_id=entry.register_id, registered_at=now, updated_at=now, **values)
            uow.session.add(row)
            outcome = "created"
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = now
            outcome = "updated"
        else:
            outcome = "unchanged"
        has_case = row.case_number is not None
        uow.commit()
    if not has_case:  # a new person, or one whose case a crash left unopened: re-loading repairs it
        opened = report_case(svc, ReportCase(
            workflow=WORKFLOW, reporter=by, unit=entry.grid, category=GROUP_CATEGORY[entry.group_type],
            title=f"特殊群体探访 {mask_name(entry.name)}（{entry.group_type}）", channel="care_register",
            data={"register_id": entry.register_id, "group_type": entry.group_type,
                  "uncounted_kinds": uncounted_kinds(svc, entry.group_type)}))
        with svc.uow() as uow:
            row = uow.session.get(CarePerson, entry.register_id)
            row.case_number = opened.number
            uow.session.add(row)
            uow.commit()
    with svc.uow(write=False) as uow:
        row = uow.session.get(CarePerson, entry.register_id)
        uow.session.expunge(row)
    return row, outcome


def parse_csv(svc: Services, text: str, source: str) -> tuple[list[CareEntry], list[str]]:
    """Rows of a register file (UTF-8, a BOM allowed; header ``CSV_COLUMNS``, in any order), and the
    problems as ``file:line: message``."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        return [], [f"{source}:1: missing column(s) {', '.join(missing)} (columns: {', '.join(CSV_COLUMNS)})"]
    entries, errors, seen = [], [], {}
    for raw in reader:
        line = reader.line_num
        get = {k: (v or "").strip() for k, v in raw.items() if k}
        e = CareEntry(register_id=get.get("register_id", ""), name=get.get("name", ""),
                      group_type=get.get("group_type", ""), grid=get.get("grid", ""),
                      id_number=get.get("id_number") or None, phone=get.get("phone") or None,
                      address=get.get("address") or None, worker=get.get("worker") or None,
                      frequency=get.get("frequency") or "monthly")
        problems = problems_of(svc, e)
        if e.register_id in seen:
            problems["register_id"] = f"{e.register_id!r} again (first on line {seen[e.register_id]})"
        seen.setdefault(e.register_id, line)
        errors.extend(f"{source}:{line}: {k}: {v}" for k, v in problems.items())
        entries.append(e)
    return entries, errors


#: Who opens the cases of a register file loaded on the server (``gridflow care load``).
LOADER = Actor("care-register", "admin")


def load_csv(svc: Services, text: str, source: str, by: Actor = LOADER) -> LoadResult:
    """Load a register file: nothing is registered when any row is wrong (every problem is listed)."""
    _refresh(svc)
    entries, errors = parse_csv(svc, text, source)
    result = LoadResult(errors=errors)
    if errors:
        return result
    for e in entries:
        _, outcome = register(svc, e, by)
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def _refresh(svc: Services) -> None:
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)


# --- reading the register -------------------------------------------------------------------------

def _sees(svc: Services, caller: Caller, grid: str) -> bool:
    if caller.role == "admin":
        return True
    if caller.role in ("resident", "department_handler") or caller.unit is None:
        return False
    return grid == caller.unit or svc.units.is_within(grid, caller.unit)


def person_view(p: CarePerson, caller: Caller) -> dict[str, Any]:
    full = sees_contact(caller)
    return {"register_id": p.register_id, "name": p.name if full else mask_name(p.name),
            "id_number": (p.id_number if full else _mask_id(p.id_number)),
            "phone": p.phone if full else mask_phone(p.phone),
            "address": p.address if full else mask_address(p.address),
            "group_type": p.group_type, "grid": p.grid_code, "worker": p.worker_id, "frequency": p.frequency,
            "case_number": p.case_number, "registered_at": p.registered_at.isoformat()}


def _mask_id(number: str | None) -> str | None:
    return number[:6] + "*" * 8 + number[-4:] if number and len(number) == 18 else number


def people(svc: Services, caller: Caller, grid: str | None = None) -> list[dict[str, Any]]:
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        q = select(CarePerson).order_by(CarePerson.register_id)
        if grid:
            q = q.where(CarePerson.grid_code == grid)
        rows = list(uow.session.exec(q))
    return [person_view(p, caller) for p in rows if _sees(svc, caller, p.grid_code)]


def person(svc: Services, caller: Caller, register_id: str) -> dict[str, Any] | None:
    with svc.uow(write=False) as uow:
        p = uow.session.get(CarePerson, register_id)
    return person_view(p, caller) if p is not None and _sees(svc, caller, p.grid_code) else None


# --- the monthly visit rate, from history ---------------------------------------------------------

def parse_month(text: str) -> date:
    m = _MONTH.match(text or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 2100:
        raise PayloadInvalid(f"month must be YYYY-MM (2000-01 to 2100-12), got {text!r}",
                             fields={"month": "YYYY-MM"})
    return date(int(m.group(1)), int(m.group(2)), 1)


def owed_and_visited(events: Iterable[tuple[str, Mapping[str, Any]]], month: str) -> tuple[bool, bool]:
    """Whether one case owed a visit in ``month`` (``YYYY-MM``) and whether it was visited, from its visit
    deadline's history: owed when a deadline targeted the month (``DeadlineStarted.period``), breached for
    it or went on to it unvisited (``DeadlineBreached.period`` / ``next_period``), was resumed onto it
    after a pause (``DeadlineResumed.due_at``) or a visit met it; visited when a counted visit met it
    (``DeadlineStopped.period_met``)."""
    owed = visited = False
    for type_, data in events:
        if data.get("timer") != VISIT_TIMER:
            continue
        if type_ == "DeadlineStarted" and data.get("period") == month:
            owed = True
        elif type_ == "DeadlineBreached" and month in (data.get("period"), data.get("next_period")):
            owed = True
        elif type_ == "DeadlineResumed" and _month_of(data.get("due_at")) == month:
            owed = True
        elif type_ == "DeadlineStopped" and data.get("period_met") == month:
            owed = visited = True
    return owed, visited


def visit_rate(svc: Services, caller: Caller, month: str) -> dict[str, Any]:
    """Visited / owed in ``month`` per grid, community and street (and in total), with the people missed
    (masked as the caller sees the register)."""
    start = parse_month(month)
    label = start.strftime("%Y-%m")
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        rows = list(uow.session.exec(select(CarePerson).where(CarePerson.case_number.is_not(None))))
        rows = [p for p in rows if _sees(svc, caller, p.grid_code)]
        numbers = {p.case_number: p for p in rows}
        history: dict[str, list[tuple[str, Mapping[str, Any]]]] = {n: [] for n in numbers}
        if numbers:
            q = (sa.select(CaseRow.number, EventRow.type, EventRow.data)
                 .join(EventRow, EventRow.case_id == CaseRow.id)
                 .where(CaseRow.number.in_(sorted(numbers)),
                        EventRow.type.in_(_HISTORY))
                 .order_by(EventRow.case_id, EventRow.seq))
            for number, type_, data in uow.session.execute(q):
                history[number].append((type_, data or {}))
    units: dict[tuple[str, str], dict[str, Any]] = {}
    total = {"owed": 0, "visited": 0}
    missed = []
    for number, p in sorted(numbers.items(), key=lambda kv: kv[1].register_id):
        owed, visited = owed_and_visited(history[number], label)
        if not owed:
            continue
        total["owed"] += 1
        total["visited"] += int(visited)
        for kind in ("grid", "community", "street"):
            u = (svc.units.get(p.grid_code) if kind == "grid"
                 else svc.units.ancestor_of_kind(p.grid_code, kind))
            if u is None:
                continue
            fig = units.setdefault((kind, u.code), {"kind": kind, "unit": u.code, "name": u.name,
                                                    "owed": 0, "visited": 0})
            fig["owed"] += 1
            fig["visited"] += int(visited)
        if not visited:
            missed.append({**person_view(p, caller), "community": _code(svc, p.grid_code, "community")})
    order = {"street": 0, "community": 1, "grid": 2}
    out = sorted(units.values(), key=lambda f: (order[f["kind"]], f["unit"]))
    for fig in [*out, total]:
        fig["rate"] = round(fig["visited"] / fig["owed"], 4) if fig["owed"] else None
    return {"month": label, "total": total, "units": out, "missed": missed}


def _month_of(at: Any) -> str | None:
    try:
        return datetime.fromisoformat(str(at)).astimezone(LOCAL_ZONE).strftime("%Y-%m")
    except ValueError:
        return None


def _code(svc: Services, grid: str, kind: str) -> str | None:
    u = svc.units.ancestor_of_kind(grid, kind)
    return u.code if u else None


#: Who may register people and change the register (within their area; an admin anywhere).
REGISTRARS = frozenset({"admin", "community_dispatcher", "street_dispatcher", "district_dispatcher"})


def register_as(svc: Services, caller: Caller, entry: CareEntry) -> tuple[dict[str, Any], str]:
    """:func:`register` for a caller of the API: a registrar, for a grid in its area."""
    if caller.role not in REGISTRARS:
        raise Forbidden(f"role {caller.role!r} may not change the care register "
                        f"(allowed: {', '.join(sorted(REGISTRARS))})", role=caller.role)
    _refresh(svc)
    if entry.grid and svc.units.get(entry.grid) is not None and not _sees(svc, caller, entry.grid):
        raise Forbidden(f"grid {entry.grid} is outside your area", unit=entry.grid)
    with svc.uow(write=False) as uow:
        existing = uow.session.get(CarePerson, entry.register_id)
        if existing is not None and not _sees(svc, caller, existing.grid_code):
            raise Forbidden(f"{entry.register_id} is registered outside your area", unit=existing.grid_code)
    row, outcome = register(svc, entry, caller.actor)
    return person_view(row, caller), outcome
