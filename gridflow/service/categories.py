"""The event catalogue this installation files reports against: the shipped file, then a city's files
(``GRIDFLOW_CATEGORIES``), checked against the workflows it knows (docs/categories.md).

Named ``categories`` because ``catalog`` is the workflow catalogue (:mod:`.catalog`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from ..engine.categories import (  # noqa: F401 (CatalogueInvalid: for entry points)
    CatalogueInvalid, Category, CategoryCatalogue, load_catalogue_files,
)
from ..engine.errors import PayloadInvalid
from .catalog import SHIPPED_DIR, WorkflowCatalog

SHIPPED_CATEGORIES = SHIPPED_DIR / "categories" / "categories.yaml"


def limits_read(catalog: WorkflowCatalog) -> dict[str, frozenset[str]]:
    """Each workflow's name -> the category limits its timers read (``category_limit``), every version."""
    read: dict[str, set[str]] = {name: set() for name in catalog.names()}
    for defn in catalog.all():
        read[defn.name].update(t.category_limit for s in defn.states.values() for t in s.timers
                               if t.category_limit)
    return {name: frozenset(keys) for name, keys in read.items()}


def catalogue_files(extra: Iterable[str | Path] = ()) -> list[Path]:
    """The shipped catalogue, then the city's files in the order given."""
    return [SHIPPED_CATEGORIES, *map(Path, extra)]


def build_categories(catalog: WorkflowCatalog, extra: Iterable[str | Path] = ()) -> CategoryCatalogue:
    """The catalogue of the shipped file and ``extra`` (later over earlier), checked against ``catalog``;
    raises ``CatalogueInvalid`` with every problem, each with its file and line."""
    return load_catalogue_files(catalogue_files(extra), workflows=limits_read(catalog))


@lru_cache(maxsize=1)
def shipped_categories() -> CategoryCatalogue:
    """The shipped catalogue alone (services built without bootstrap: unit tests, tools)."""
    return load_catalogue_files([SHIPPED_CATEGORIES])


def category_of(categories: CategoryCatalogue, code: str | None) -> Category:
    """The entry a report names; 422 ``payload_invalid`` naming the field and the closest codes."""
    code = (code or "").strip()
    found = categories.get(code)
    if found is not None:
        return found
    close = categories.suggest(code)
    hint = f"; closest: {', '.join(close)}" if close else ""
    if not code:
        message = "a report needs a category: a code from the event catalogue (GET /api/v1/catalog)"
        field = "missing: give a catalogue code such as E0102 (暴露垃圾)"
    else:
        message = f"unknown category {code!r}{hint} (GET /api/v1/catalog lists them)"
        field = f"unknown category {code!r}{hint}"
    raise PayloadInvalid(message, fields={"category": field}, suggestions=close)


def listing(categories: CategoryCatalogue, kind: str | None = None,
            workflow: str | None = None) -> tuple[Category, ...]:
    return categories.select(kind, workflow)


def limits_text(category: Category) -> Mapping[str, str]:
    return category.limit_texts()
