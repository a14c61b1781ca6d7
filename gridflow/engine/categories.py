"""The event catalogue (事项目录): what can be reported, how urgent it is, who answers for it first, and the
limits its cases run on.

A category is data handed to the engine, never looked up by it: at filing the intake copies the
category's limits into the case data (:data:`CATEGORY_LIMITS_KEY`), and a timer that says
``category_limit: <name>`` runs on that limit instead of its own ``duration`` — so a case keeps the
limits it was filed with, whatever the catalogue says later.

Codes are one letter for the kind and four digits, a 2-digit major and a 2-digit minor class
(GB/T 30428 numbers components and events separately, so the letter keeps them apart):
``C`` 部件 components, ``E`` 事件 events, ``G`` 社会治理 governance classes, ``H`` 12345 request types.
Catalogue files are layered: a later file adds entries and overrides the fields it names of an entry
an earlier file defined (limits key by key, ``null`` removes one); ``replace: true`` starts afresh.
Validation collects every problem of every file, each with its file and line.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from .definition import CATEGORY_LIMITS_KEY, Label  # noqa: F401 (CATEGORY_LIMITS_KEY re-exported)
from .durations import Duration, DurationError
from .errors import DefinitionError, GridflowError, Problem
from .load_common import LIMIT_NAME_RE, Collector, Path_, label, unknown_keys
from .loader import parse_yaml  # the workflow loader's YAML with line numbers


#: The code's first letter says its kind.
KIND_PREFIXES: Mapping[str, str] = MappingProxyType(
    {"C": "component", "E": "event", "G": "governance", "H": "hotline"})
KIND_LABELS: Mapping[str, Label] = MappingProxyType({
    "component": Label("部件", "Component"), "event": Label("事件", "Event"),
    "governance": Label("社会治理", "Social governance"), "hotline": Label("12345 诉求", "12345 request"),
})
URGENCIES: Mapping[str, Label] = MappingProxyType({
    "normal": Label("一般", "Normal"), "urgent": Label("紧急", "Urgent"),
    "emergency": Label("特急", "Emergency"),
})
#: Who answers for a case first (责任主体): the owner of the thing (权属单位) or the territory (属地).
ASSIGNEES = frozenset({"owner", "territory"})
#: A component goes to its owner first, then the territory; everything else the other way round.
DEFAULT_ASSIGNMENT: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "component": ("owner", "territory"), "event": ("territory", "owner"),
    "governance": ("territory", "owner"), "hotline": ("territory", "owner"),
})
CODE_RE = re.compile(r"^[CEGH]\d{4}$")
MAJOR_RE = re.compile(r"^[CEGH]\d{2}$")

_TOP_KEYS = {"replace", "majors", "defaults", "categories"}
_ENTRY_KEYS = {"code", "label", "workflow", "urgency", "limits", "assignment"}
_DEFAULT_KEYS = {"workflow", "urgency", "assignment"}


class CatalogueInvalid(GridflowError):
    """A catalogue file is broken; ``problems`` lists every problem of every file, with file and line."""

    code = "catalogue_invalid"
    status = 422

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the event catalogue:\n"
                         + "\n".join(f"  {p}" for p in self.problems),
                         problems=[p.as_dict() for p in self.problems])


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    label: Label
    kind: str
    major: str  # the major class's code, e.g. "E01"
    major_label: Label
    workflow: str  # the default workflow of a report naming this category and no workflow
    urgency: str
    limits: Mapping[str, Duration] = field(default_factory=lambda: MappingProxyType({}))
    assignment: tuple[str, ...] = ()
    source: str = ""
    line: int | None = None

    def limit_texts(self) -> dict[str, str]:
        """The limits as the case data keeps them."""
        return {name: str(d) for name, d in self.limits.items()}


@dataclass(frozen=True, slots=True)
class CategoryCatalogue:
    entries: Mapping[str, Category]
    majors: Mapping[str, Label] = field(default_factory=lambda: MappingProxyType({}))
    sources: tuple[str, ...] = ()

    def get(self, code: str) -> Category | None:
        return self.entries.get(code)

    def __len__(self) -> int:
        return len(self.entries)

    def select(self, kind: str | None = None, workflow: str | None = None) -> tuple[Category, ...]:
        return tuple(c for _, c in sorted(self.entries.items())
                     if (kind is None or c.kind == kind) and (workflow is None or c.workflow == workflow))

    def suggest(self, text: str, n: int = 5) -> list[str]:
        """The codes closest to ``text``, by code and by either label (difflib), best first; an old
        4-digit code finds the entries of every kind that end in it."""
        text = (text or "").strip()
        if not text:
            return []
        keys: dict[str, str] = {}
        for c in self.entries.values():
            for key in (c.code, c.label.zh, c.label.en.lower()):
                keys.setdefault(key, c.code)
        probe = text.upper() if text[:1].isdigit() or CODE_RE.match(text.upper()) else text.lower()
        found = [k for k in keys if len(probe) >= 2 and (probe in k or k.endswith(probe))]
        found += difflib.get_close_matches(probe, list(keys), n=n, cutoff=0.5) or \
            difflib.get_close_matches(probe, list(keys), n=n, cutoff=0.3)
        return list(dict.fromkeys(keys[k] for k in found))[:n]


# --- loading ----------------------------------------------------------------------------------

@dataclass
class _Layers:
    """What the files read so far say, before it is frozen (raw entries, merged field by field)."""

    majors: dict[str, tuple[Label, str, int | None]] = field(default_factory=dict)
    defaults: dict[str, dict[str, tuple[Any, str, int | None]]] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> field -> (value, src, line)
    sources: list[str] = field(default_factory=list)


def load_catalogue(texts: Iterable[tuple[str, str]], *, workflows: Mapping[str, frozenset[str]] | None = None,
                   ) -> CategoryCatalogue:
    """Build the catalogue from ``(text, source)`` pairs, later files over earlier ones.

    ``workflows`` (workflow name -> the category limits its timers read) checks each entry's workflow
    and limit names; without it they are not checked. Raises :class:`CatalogueInvalid` with every
    problem found."""
    layers, problems = _Layers(), []
    for text, source in texts:
        try:
            data, lines = parse_yaml(text, source)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        c = Collector(source, lines)
        _read_file(c, data, layers)
        layers.sources.append(source)
        problems.extend(c.problems)
    catalogue = _freeze(layers, problems, workflows)
    if problems:
        raise CatalogueInvalid(sorted(problems, key=lambda p: (p.file, p.line or 0)))
    return catalogue


def load_catalogue_files(paths: Iterable[str | Path], *,
                         workflows: Mapping[str, frozenset[str]] | None = None) -> CategoryCatalogue:
    texts, problems = [], []
    for p in map(Path, paths):
        try:
            texts.append((p.read_text(encoding="utf-8"), str(p)))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(f"cannot read file: {getattr(exc, 'strerror', None) or exc}", "", str(p)))
    if problems:
        raise CatalogueInvalid(problems)
    return load_catalogue(texts, workflows=workflows)


def _read_file(c: Collector, data: Any, layers: _Layers) -> None:
    if isinstance(data, dict):
        data = dict(data)
        c.problems.extend(data.pop("__duplicates__", []))
    if not isinstance(data, dict) or "__not_mapping__" in data:
        c.add((), "catalogue", "a catalogue file must be a mapping with 'categories' "
                               "(and 'majors', 'defaults')")
        return
    unknown_keys(c, data, _TOP_KEYS, (), "catalogue")
    if data.get("replace", False) is True:
        layers.majors.clear()
        layers.defaults.clear()
        layers.entries.clear()
    elif data.get("replace", False) is not False:
        c.add(("replace",), "catalogue", "replace must be true or false")
    _read_majors(c, data.get("majors") or {}, layers)
    _read_defaults(c, data.get("defaults") or {}, layers)
    raw = data.get("categories") or []
    if not isinstance(raw, list):
        c.add(("categories",), "catalogue", "categories must be a list of entries")
        return
    seen: dict[str, int | None] = {}
    for i, entry in enumerate(raw):
        _read_entry(c, entry, ("categories", i), layers, seen)


def _read_majors(c: Collector, raw: Any, layers: _Layers) -> None:
    if not isinstance(raw, dict):
        c.add(("majors",), "catalogue", "majors must map a major class code (e.g. E01) to its label")
        return
    for code, lab in raw.items():
        path = ("majors", code)
        if not isinstance(code, str) or not MAJOR_RE.match(code):
            c.add(path, f"major {code}", f"major class code {code!r} must be a kind letter (C, E, G, H) "
                                         "and two digits, e.g. E01")
            continue
        if not isinstance(lab, dict) or not lab.get("zh") or not lab.get("en"):
            c.add(path, f"major {code}", "a major class needs a label with both 'zh' and 'en'")
            continue
        layers.majors[code] = (label(c, lab, path, f"major {code}", code), c.source, c.line(path))


def _read_defaults(c: Collector, raw: Any, layers: _Layers) -> None:
    if not isinstance(raw, dict):
        c.add(("defaults",), "catalogue", "defaults must map a kind to its workflow, urgency and assignment")
        return
    for kind, values in raw.items():
        path = ("defaults", kind)
        if kind not in KIND_LABELS:
            c.add(path, f"defaults {kind}", f"unknown kind {kind!r} (known: {', '.join(KIND_LABELS)})")
            continue
        if not isinstance(values, dict):
            c.add(path, f"defaults {kind}", "defaults of a kind must be a mapping")
            continue
        unknown_keys(c, values, _DEFAULT_KEYS, path, f"defaults {kind}")
        kept = layers.defaults.setdefault(kind, {})
        for key in _DEFAULT_KEYS & set(values):
            if _field_ok(c, key, values[key], path + (key,), f"defaults {kind}"):
                kept[key] = (values[key], c.source, c.line(path + (key,)))


def _read_entry(c: Collector, entry: Any, path: Path_, layers: _Layers, seen: dict[str, int | None]) -> None:
    if not isinstance(entry, dict):
        c.add(path, "category", "a category must be a mapping with at least 'code'")
        return
    code = entry.get("code")
    el = f"category {code}"
    if not isinstance(code, str) or not CODE_RE.match(code):
        c.add(path + ("code",), el, f"code {code!r} must be a kind letter (C component, E event, "
                                    "G governance, H hotline), a 2-digit major and a 2-digit minor, "
                                    "e.g. E0102")
        return
    if code in seen:
        c.add(path, el, f"duplicate code {code!r} (first defined on line {seen[code]})")
        return
    seen[code] = c.line(path)
    unknown_keys(c, entry, _ENTRY_KEYS, path, el)
    known = layers.entries.get(code)
    merged: dict[str, Any] = dict(known) if known else {"code": (code, c.source, c.line(path))}
    if "label" in entry:
        lab = entry["label"]
        if not isinstance(lab, dict) or not lab.get("zh") or not lab.get("en"):
            c.add(path + ("label",), el, "label needs both 'zh' and 'en'")
        else:
            lpath = path + ("label",)
            merged["label"] = (label(c, lab, lpath, el, code), c.source, c.line(lpath))
    elif known is None:
        c.add(path, el, f"a new category needs a label with 'zh' and 'en' ({code} is not defined by an "
                        "earlier file)")
    for key in ("workflow", "urgency", "assignment"):
        if key in entry and _field_ok(c, key, entry[key], path + (key,), el):
            merged[key] = (entry[key], c.source, c.line(path + (key,)))
    if "limits" in entry:
        merged["limits"] = _read_limits(c, entry["limits"], path + ("limits",), el,
                                        dict(known["limits"][0]) if known and "limits" in known else {})
    merged["at"] = (None, c.source, c.line(path))
    layers.entries[code] = merged


def _read_limits(c: Collector, raw: Any, path: Path_, el: str, limits: dict[str, tuple]) -> tuple:
    if not isinstance(raw, dict):
        c.add(path, el, "limits must map a limit name (e.g. handle) to a duration such as 4wh or 2wd")
        return (limits, c.source, c.line(path))
    for name, value in raw.items():
        lpath = path + (name,)
        if not isinstance(name, str) or not LIMIT_NAME_RE.match(name):
            c.add(lpath, el, f"limit name {name!r} must be a lower-case name such as 'handle'")
            continue
        if value is None:
            limits.pop(name, None)  # an override removes it: the timer's own duration applies again
            continue
        try:
            limits[name] = (Duration.parse(value), c.source, c.line(lpath))
        except DurationError as exc:
            c.add(lpath, el, f"limit {name!r}: {exc}")
    return (limits, c.source, c.line(path))


def _field_ok(c: Collector, key: str, value: Any, path: Path_, el: str) -> bool:
    if key == "workflow" and not (isinstance(value, str) and value.isidentifier()):
        c.add(path, el, f"workflow must be a workflow name such as grid_event, got {value!r}")
        return False
    if key == "urgency" and value not in URGENCIES:
        c.add(path, el, f"unknown urgency {value!r} (known: {', '.join(URGENCIES)})")
        return False
    if key == "assignment":
        ok = (isinstance(value, list) and value and len(set(value)) == len(value)
              and all(v in ASSIGNEES for v in value))
        if not ok:
            c.add(path, el, f"assignment must list who answers first: owner and/or territory, got {value!r}")
        return bool(ok)
    return True


def _freeze(layers: _Layers, problems: list[Problem], workflows: Mapping[str, frozenset[str]] | None,
            ) -> CategoryCatalogue:
    read_limits = frozenset().union(*workflows.values()) if workflows else frozenset()
    entries: dict[str, Category] = {}
    for code, raw in layers.entries.items():
        kind = KIND_PREFIXES[code[0]]
        _, src, line = raw["at"]
        defaults = layers.defaults.get(kind, {})

        def pick(key: str, fallback: Any = None) -> tuple[Any, str, int | None]:
            return raw.get(key) or defaults.get(key) or (fallback, src, line)

        def problem(message: str, where: tuple[Any, str, int | None] = (None, src, line)) -> None:
            problems.append(Problem(message, f"category {code}", where[1], where[2]))

        major = code[:3]
        if major not in layers.majors:
            problem(f"major class {major} is not declared under 'majors' (declared: "
                    f"{', '.join(sorted(k for k in layers.majors if k[0] == code[0])) or 'none'})")
        workflow = pick("workflow")
        if workflow[0] is None:
            problem(f"no workflow: give the entry one or set defaults: {kind}: workflow")
        elif workflows is not None and workflow[0] not in workflows:
            problem(f"unknown workflow {workflow[0]!r} (known: {', '.join(sorted(workflows))})", workflow)
        limits = raw.get("limits", ({}, src, line))[0]
        for name, (_, lsrc, lline) in limits.items():
            if workflows is not None and name not in read_limits:
                problem(f"limit {name!r} is read by no workflow timer (category_limit: "
                        f"{', '.join(sorted(read_limits)) or 'none'})", (None, lsrc, lline))
        if "label" not in raw:
            continue  # reported where the entry is
        entries[code] = Category(
            code=code, label=raw["label"][0], kind=kind, major=major,
            major_label=layers.majors.get(major, (Label(major, major),))[0], workflow=str(workflow[0] or ""),
            urgency=pick("urgency", "normal")[0],
            limits=MappingProxyType({n: d for n, (d, _, _) in sorted(limits.items())}),
            assignment=tuple(pick("assignment", list(DEFAULT_ASSIGNMENT[kind]))[0]), source=src, line=line)
    majors = MappingProxyType({k: v[0] for k, v in sorted(layers.majors.items())})
    return CategoryCatalogue(MappingProxyType(dict(sorted(entries.items()))), majors, tuple(layers.sources))
