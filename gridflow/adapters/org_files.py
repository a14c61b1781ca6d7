"""Organisation files read and checked: units and their hierarchy (YAML or CSV), grid polygons (GeoJSON)
and the address table (YAML or CSV), into one ``OrgPlan`` — or every problem at once.

Every problem names its file and line (YAML, CSV) or its feature (GeoJSON: index and grid code), so a
city's GIS office can fix a whole file in one round. The files together are the whole organisation: what
a later load no longer contains is retired by the service, never deleted.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from shapely import STRtree, from_geojson, make_valid
from shapely.validation import explain_validity

from ..engine.errors import DefinitionError, OrganisationInvalid, Problem
from ..engine.loader import parse_yaml
from ..engine.roles import UNIT_KINDS

#: Overlap of two grids, or a grid's part outside its community, tolerated as drawing noise:
#: 1e-9 square degrees, about 10 m² at Yantai's latitude.
AREA_TOLERANCE = 1e-9

#: kind → (kinds its parent may be, digits its code adds to the parent's; None: its own rule)
HIERARCHY: dict[str, tuple[tuple[str, ...], int | None]] = {
    "city": ((), None), "district": (("city",), None), "street": (("district",), 3),
    "community": (("street",), 3), "grid": (("community",), 2),
    "department": (("city", "district", "street"), None),
}
_OWN_CODE = {"city": re.compile(r"\d{4}"), "district": re.compile(r"\d{6}"),
             "department": re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")}
_OWN_RULE = {"city": "4 digits", "district": "6 digits",
             "department": "a letter, then letters, digits, '-', '_' or '.'"}
_SECTIONS = {"cities": "city", "districts": "district", "streets": "street", "communities": "community",
             "grids": "grid", "departments": "department", "units": None}


@dataclass(frozen=True, slots=True)
class Where:
    file: str
    line: int | None = None
    element: str = ""

    def problem(self, message: str) -> Problem:
        return Problem(message, self.element, self.file, self.line)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else f"{self.file} {self.element}"


@dataclass(frozen=True, slots=True)
class UnitSpec:
    code: str
    name: str
    kind: str
    parent: str | None
    where: Where


@dataclass(frozen=True, slots=True)
class ShapeSpec:
    code: str
    community: str | None
    name: str | None
    geometry: Any  # a shapely polygon
    where: Where


@dataclass(frozen=True, slots=True)
class AddressSpec:
    address: str
    unit: str
    where: Where


@dataclass
class OrgFiles:
    units: list[UnitSpec] = field(default_factory=list)
    shapes: list[ShapeSpec] = field(default_factory=list)
    addresses: list[AddressSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedUnit:
    code: str
    name: str
    kind: str
    parent: str | None
    boundary_wkt: str | None


@dataclass(frozen=True)
class OrgPlan:
    """A checked organisation: what a load makes the units and the address table."""

    units: dict[str, PlannedUnit]
    addresses: dict[str, str]
    source: str


def normalise_address(text: str) -> str:
    """Addresses compare without spaces and with full-width digits and letters read as ASCII."""
    return re.sub(r"\s+", "", text.translate(_FULL_WIDTH)).lower()


_FULL_WIDTH = {0xFF10 + i: 0x30 + i for i in range(10)} | {0xFF21 + i: 0x41 + i for i in range(26)} \
    | {0xFF41 + i: 0x61 + i for i in range(26)} | {0xFF0D: 0x2D}


# --- reading -----------------------------------------------------------------------------------

def read_org_files(paths: Iterable[str | Path]) -> OrgFiles:
    out = OrgFiles()
    for path in paths:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            out.problems.append(Problem(f"cannot read the file: {exc}", "", str(p)))
            continue
        suffix = p.suffix.lower()
        if suffix in (".geojson", ".json"):
            _read_geojson(text, str(p), out)
        elif suffix == ".csv":
            _read_csv(text, str(p), out)
        elif suffix in (".yaml", ".yml"):
            _read_yaml(text, str(p), out)
        else:
            out.problems.append(Problem("unknown file type (expected .yaml, .csv or .geojson)", "", str(p)))
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, str)):
        return str(value).strip() or None
    return None


def _unit(raw: Any, kind: str | None, where: Where, out: OrgFiles) -> None:
    if not isinstance(raw, dict):
        out.problems.append(where.problem("a unit must be a mapping with code, name (and kind, parent)"))
        return
    code, name = _text(raw.get("code")), _text(raw.get("name"))
    kind = kind or _text(raw.get("kind"))
    parent = _text(raw.get("parent"))
    element = f"unit {code}" if code else "unit"
    w = Where(where.file, where.line, element)
    missing = [k for k, v in (("code", code), ("name", name), ("kind", kind)) if v is None]
    if missing:
        out.problems.append(w.problem(f"missing {', '.join(missing)}"))
        return
    if kind not in UNIT_KINDS:
        out.problems.append(w.problem(f"unknown unit kind {kind!r} (one of {', '.join(UNIT_KINDS)})"))
        return
    out.units.append(UnitSpec(code, name, kind, parent, w))  # type: ignore[arg-type]


def _address(raw: Any, where: Where, out: OrgFiles) -> None:
    address = _text(raw.get("address")) if isinstance(raw, dict) else None
    unit = _text(raw.get("grid") or raw.get("unit")) if isinstance(raw, dict) else None
    if address is None or unit is None:
        out.problems.append(where.problem("an address needs 'address' and 'grid' (or 'unit')"))
        return
    out.addresses.append(AddressSpec(address, unit, Where(where.file, where.line, f"address {address}")))


def _read_yaml(text: str, source: str, out: OrgFiles) -> None:
    try:
        data, lines = parse_yaml(text, source)
    except DefinitionError as exc:
        out.problems.extend(exc.problems)
        return
    if not isinstance(data, dict):
        out.problems.append(Problem("expected a mapping with units (or districts, streets, …) and "
                                    "addresses", "", source, 1))
        return
    for dup in data.pop("__duplicates__", []):
        out.problems.append(dup)
    for key, items in data.items():
        line = lines.get((key,))
        if key not in _SECTIONS and key != "addresses":
            out.problems.append(Problem(f"unknown section {key!r} (expected {', '.join(_SECTIONS)}, "
                                        "addresses)", key, source, line))
            continue
        if not isinstance(items, list):
            out.problems.append(Problem(f"{key} must be a list", key, source, line))
            continue
        for i, raw in enumerate(items):
            where = Where(source, lines.get((key, i), line))
            if key == "addresses":
                _address(raw, where, out)
            else:
                _unit(raw, _SECTIONS[key], where, out)


def _read_csv(text: str, source: str, out: OrgFiles) -> None:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    is_addresses = "address" in header
    needed = {"address"} if is_addresses else {"code", "name", "kind"}
    if not needed <= set(header):
        out.problems.append(Problem(f"the header must name {', '.join(sorted(needed))} (units: code, name, "
                                    "kind, parent; addresses: address, grid)", "header", source, 1))
        return
    for row in reader:
        where = Where(source, reader.line_num)
        if is_addresses:
            _address(row, where, out)
        else:
            _unit(row, None, where, out)


def _read_geojson(text: str, source: str, out: OrgFiles) -> None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        out.problems.append(Problem(f"not valid JSON: {exc.msg}", "", source, exc.lineno))
        return
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list) or data.get("type") != "FeatureCollection":
        out.problems.append(Problem("expected a GeoJSON FeatureCollection", "", source))
        return
    for i, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        props = props if isinstance(props, dict) else {}
        code = _text(props.get("grid") or props.get("code") or feature.get("id"))
        where = Where(source, None, f"feature {i}" + (f" (grid {code})" if code else ""))
        if code is None:
            out.problems.append(where.problem("a feature needs the grid code in properties.grid (or its id)"))
            continue
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        shape = _polygon(geometry, where, out)
        if shape is not None:
            out.shapes.append(ShapeSpec(code, _text(props.get("community")), _text(props.get("name")),
                                        shape, where))


def _polygon(geometry: Any, where: Where, out: OrgFiles):
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        out.problems.append(where.problem("the geometry must be a Polygon or MultiPolygon"))
        return None
    try:
        shape = from_geojson(json.dumps(geometry))
    except Exception as exc:  # shapely's GEOSException and friends: the message is what matters
        out.problems.append(where.problem(f"unreadable geometry: {exc}"))
        return None
    if shape.is_empty:
        out.problems.append(where.problem("the polygon is empty"))
        return None
    if not shape.is_valid:
        out.problems.append(where.problem(f"invalid polygon: {explain_validity(shape)}"))
        return make_valid(shape)  # still checked for overlaps, so one round shows everything
    return shape


# --- checking ----------------------------------------------------------------------------------

def check(files: OrgFiles, tolerance: float = AREA_TOLERANCE) -> OrgPlan:
    """The plan the files describe, or OrganisationInvalid with every problem found."""
    problems = list(files.problems)
    units: dict[str, UnitSpec] = {}
    for u in files.units:
        if u.code in units:
            first = units[u.code].where
            problems.append(u.where.problem(f"duplicate code {u.code!r} (first defined at {first})"))
        else:
            units[u.code] = u
    for u in units.values():
        problems.extend(_hierarchy_problems(u, units))
    shapes = _shapes_by_code(files.shapes, units, problems)
    problems.extend(_orphan_grids(units, shapes))
    problems.extend(_overlaps([s for s in shapes.values() if units.get(s.code, None) and
                               units[s.code].kind == "grid"], tolerance))
    problems.extend(_outside_community(units, shapes, tolerance))
    addresses = _addresses(files.addresses, units, problems)
    sources = sorted({u.where.file for u in files.units} | {s.where.file for s in files.shapes}
                     | {a.where.file for a in files.addresses})
    if problems:
        raise OrganisationInvalid(problems)
    planned = {c: PlannedUnit(c, u.name, u.kind, u.parent, shapes[c].geometry.wkt if c in shapes else None)
               for c, u in units.items()}
    return OrgPlan(planned, addresses, ", ".join(sources))


def _hierarchy_problems(u: UnitSpec, units: dict[str, UnitSpec]) -> list[Problem]:
    kinds, digits = HIERARCHY[u.kind]
    parent = units.get(u.parent) if u.parent else None
    out: list[Problem] = []
    if u.parent is not None and parent is None:
        out.append(u.where.problem(f"unknown parent {u.parent!r}"))
    elif u.parent is None and kinds and u.kind not in ("district",):
        out.append(u.where.problem(f"a {u.kind} needs a parent ({' or '.join(kinds)})"))
    elif parent is not None and parent.kind not in kinds:
        out.append(u.where.problem(f"a {u.kind}'s parent must be a {' or '.join(kinds) or 'nothing'}, "
                                   f"not the {parent.kind} {parent.code!r}"))
    if digits is not None:
        if parent is not None and not re.fullmatch(re.escape(parent.code) + rf"\d{{{digits}}}", u.code):
            out.append(u.where.problem(f"code {u.code!r} does not follow its parent's: a {u.kind} code is "
                                       f"its parent's {parent.code!r} and {digits} more digits"))
    elif not _OWN_CODE[u.kind].fullmatch(u.code):
        out.append(u.where.problem(f"code {u.code!r} is not a {u.kind} code ({_OWN_RULE[u.kind]})"))
    elif u.kind == "district" and parent is not None and not u.code.startswith(parent.code):
        out.append(u.where.problem(f"code {u.code!r} does not follow its parent's: a district code starts "
                                   f"with its city's {parent.code!r}"))
    return out


def _shapes_by_code(shapes: list[ShapeSpec], units: dict[str, UnitSpec],
                    problems: list[Problem]) -> dict[str, ShapeSpec]:
    out: dict[str, ShapeSpec] = {}
    for s in shapes:
        unit = units.get(s.code)
        if s.code in out:
            problems.append(s.where.problem(f"a second polygon for {s.code!r} (first: {out[s.code].where})"))
            continue
        out[s.code] = s
        if unit is None:
            problems.append(s.where.problem(f"orphan polygon: no unit {s.code!r} in the unit files"))
        elif unit.kind == "grid" and s.community is not None and s.community != unit.parent:
            problems.append(s.where.problem(f"the feature says community {s.community!r}, the unit files "
                                            f"{unit.parent!r} ({unit.where})"))
        elif unit.kind == "grid" and s.name is not None and s.name != unit.name:
            problems.append(s.where.problem(f"the feature names the grid {s.name!r}, the unit files "
                                            f"{unit.name!r} ({unit.where})"))
        elif unit.kind == "department":
            problems.append(s.where.problem(f"{s.code!r} is a department: departments have no polygon"))
    return out


def _orphan_grids(units: dict[str, UnitSpec], shapes: dict[str, ShapeSpec]) -> list[Problem]:
    return [u.where.problem(f"orphan grid: no polygon for grid {u.code!r} in the GeoJSON files")
            for u in units.values() if u.kind == "grid" and u.code not in shapes]


def _overlaps(grids: list[ShapeSpec], tolerance: float) -> list[Problem]:
    if len(grids) < 2:
        return []
    tree = STRtree([g.geometry for g in grids])
    left, right = tree.query([g.geometry for g in grids], predicate="intersects")
    out = []
    for i, j in zip(left.tolist(), right.tolist()):
        if i >= j:
            continue
        area = grids[i].geometry.intersection(grids[j].geometry).area
        if area > tolerance:
            out.append(grids[j].where.problem(f"overlaps grid {grids[i].code!r} ({grids[i].where}) by "
                                              f"{area:.3g} square degrees"))
    return out


def _outside_community(units: dict[str, UnitSpec], shapes: dict[str, ShapeSpec],
                       tolerance: float) -> list[Problem]:
    """Only where the community itself has a polygon: otherwise its grids are what it covers."""
    out = []
    for s in shapes.values():
        unit = units.get(s.code)
        is_grid = unit is not None and unit.kind == "grid" and unit.parent
        community = shapes.get(unit.parent) if is_grid else None  # type: ignore[union-attr,arg-type]
        if community is None:
            continue
        outside = s.geometry.difference(community.geometry).area
        if outside > tolerance:
            out.append(s.where.problem(f"lies outside its community {unit.parent!r} ({community.where}) by "
                                       f"{outside:.3g} square degrees"))
    return out


def _addresses(specs: list[AddressSpec], units: dict[str, UnitSpec],
               problems: list[Problem]) -> dict[str, str]:
    out: dict[str, str] = {}
    first: dict[str, AddressSpec] = {}
    for a in specs:
        key = normalise_address(a.address)
        if a.unit not in units:
            problems.append(a.where.problem(f"unknown unit {a.unit!r}"))
        elif units[a.unit].kind == "department":
            problems.append(a.where.problem(f"{a.unit!r} is a department, not a place"))
        if key in first:
            problems.append(a.where.problem(f"duplicate address (first at {first[key].where})"))
            continue
        first[key] = a
        out[a.address] = a.unit
    return out
