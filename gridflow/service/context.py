"""What every use case needs: the database, the workflow catalog, the event catalogue, the clock and the
unit tree."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from ..adapters.db import Database
from ..adapters.ports import UnitOfWork
from ..adapters.unit_of_work import SqlUnitOfWork
from ..engine.clock import Clock
from ..settings import Settings
from ..engine.categories import CategoryCatalogue
from .catalog import WorkflowCatalog
from .categories import shipped_categories
from .units import UnitDirectory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """A committed change to a case, for listeners (live event streams, metrics)."""

    number: str
    workflow: str
    state: str
    version: int
    events: tuple[dict[str, Any], ...]
    holder_unit: str | None
    escalation_unit: str | None
    community_code: str | None
    street_code: str | None
    district_code: str | None
    reporter_id: str | None
    source: str  # report, action, timer, migration
    #: A confidential case (举报人保密): streams hide its reporter (see service.masking).
    confidential: bool = False


@dataclass
class Services:
    db: Database
    catalog: WorkflowCatalog
    clock: Clock
    settings: Settings
    units: UnitDirectory = field(default_factory=UnitDirectory)
    #: The event catalogue reports are filed against (bootstrap: the shipped file + GRIDFLOW_CATEGORIES).
    categories: CategoryCatalogue = field(default_factory=shipped_categories)
    listeners: list[Callable[[Change], None]] = field(default_factory=list)
    #: builds a unit of work (``write``); default: SQL on ``db``. Unit tests pass an in-memory one.
    uow_factory: Callable[..., UnitOfWork] | None = None

    def uow(self, write: bool = True) -> UnitOfWork:
        if self.uow_factory is not None:
            return self.uow_factory(write=write)
        return SqlUnitOfWork(self.db, self.catalog, write=write)

    def publish(self, change: Change) -> None:
        for listener in list(self.listeners):
            try:
                listener(change)
            except Exception:  # a broken listener must never undo a committed change
                log.exception("change listener failed for %s", change.number)
