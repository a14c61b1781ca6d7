"""The one composition root: settings + clock in, a wired application out.

The API, the CLI, the Celery worker and the tests all build gridflow here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from .adapters.db import Database
from .engine.calendar import default_registry, load_overrides
from .engine.clock import Clock, ScaledClock, SystemClock
from .service.catalog import WorkflowCatalog
from .service.context import Services
from .demo.seed import seed_demo
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    services: Services
    runner: object | None  # a timer runner, or None when Celery workers fire timers

    def close(self) -> None:
        if self.runner is not None and hasattr(self.runner, "stop"):
            self.runner.stop()
        self.services.db.dispose()


def build_clock(settings: Settings) -> Clock:
    if settings.clock_scale != 1.0:
        return ScaledClock(datetime.now(timezone.utc), settings.clock_scale)
    return SystemClock()


def bootstrap(settings: Settings | None = None, clock: Clock | None = None, *, create_schema: bool | None = None,
              runner: str = "auto", seed: bool | None = None) -> App:
    """Wire gridflow.

    ``create_schema``: run migrations on an empty database (default: only for SQLite, the embedded
    default). A database behind or ahead of the code is always refused with the command to run.
    ``runner``: "auto" (a thread runner unless a broker is configured), "thread", "inline" or "none".
    """
    settings = settings or Settings()
    clock = clock or build_clock(settings)
    db = Database(settings.database_url, busy_timeout=settings.sqlite_busy_timeout)
    if create_schema is None:
        create_schema = settings.is_sqlite
    if create_schema and db.is_empty():
        log.info("empty database: creating the schema")
        db.upgrade()
    db.check_schema()
    overrides = load_overrides(settings.calendar_overrides) if settings.calendar_overrides else None
    catalog = WorkflowCatalog(default_registry(overrides))
    catalog.load_shipped()
    if settings.workflows_dir:
        catalog.add_directory(settings.workflows_dir)
    svc = Services(db=db, catalog=catalog, clock=clock, settings=settings)
    with svc.uow() as uow:
        catalog.sync(uow.session, clock.now())
        uow.commit()
    if seed if seed is not None else settings.seed_demo:
        if seed_demo(svc):
            log.info("seeded the demo organisation")
    timer_runner = None
    if runner == "auto":
        runner = "none" if settings.broker_url else "thread"
    if runner == "thread":
        from .adapters.timers import ThreadTimerRunner
        timer_runner = ThreadTimerRunner(svc)
    elif runner == "inline":
        from .adapters.timers import InlineTimerRunner
        timer_runner = InlineTimerRunner(svc)
    return App(settings, svc, timer_runner)


# --- partial wiring: what a command needs when it does not run gridflow (validate, list, draw, db) ---


def _calendars(settings: Settings):
    """The shipped working-time calendars, with GRIDFLOW_CALENDAR_OVERRIDES applied."""
    overrides = settings.calendar_overrides
    return default_registry(load_overrides(overrides) if overrides else None)


def build_catalog(settings: Settings) -> WorkflowCatalog:
    """The shipped workflows plus GRIDFLOW_WORKFLOWS_DIR, validated, without a database."""
    catalog = WorkflowCatalog(_calendars(settings))
    catalog.load_shipped()
    if settings.workflows_dir:
        catalog.add_directory(settings.workflows_dir)
    return catalog


def load_definition(path, settings: Settings):
    """One YAML file (a ``str`` or ``Path``) as a ``WorkflowDefinition``, checked against this
    installation's guards and calendars; raises ``DefinitionError`` with every problem found."""
    from .engine.guards import default_guards
    from .engine.loader import load_file

    return load_file(path, guards=default_guards(), calendars=_calendars(settings).names())


def open_database(settings: Settings) -> Database:
    """The configured database, its schema unchecked (to create, upgrade or inspect it); dispose of it."""
    return Database(settings.database_url, busy_timeout=settings.sqlite_busy_timeout)
