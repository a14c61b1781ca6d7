"""The one composition root: settings + clock in, a wired application out.

The API, the CLI, the scheduler, the Celery worker and the tests all build gridflow here:
services, notifiers, the timer runner and (in production mode) the Celery app.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from .adapters.channels import subscriber_lookup
from .adapters.db import Database
from .adapters.notifiers import Notifier, notifiers_from_settings
from .adapters.timer_store import SqlTimerStore
from .demo.seed import seed_demo
from .engine.calendar import CalendarError, CalendarRegistry, default_registry, load_overrides
from .engine.clock import Clock, ManualClock, ScaledClock, SystemClock
from .engine.errors import GridflowError
from .engine.unit_calendars import install_unit_calendars, load_unit_calendars
from .processes.contract import TimerRunner
from .processes.runners import InlineTimerRunner, ThreadTimerRunner
from .service.catalog import WorkflowCatalog
from .service.context import Services
from .settings import Settings

log = logging.getLogger(__name__)
CALENDARS_DIR = Path(__file__).resolve().parent / "workflows" / "calendars"
#: The override file read when GRIDFLOW_CALENDAR_OVERRIDES names none.
SHIPPED_OVERRIDES = CALENDARS_DIR / "cn_overrides.yaml"
#: The unit calendar file read when GRIDFLOW_UNIT_CALENDARS names none.
SHIPPED_UNIT_CALENDARS = CALENDARS_DIR / "unit_calendars.yaml"


class ConfigurationInvalid(GridflowError):
    """A setting or a configuration file gridflow cannot start with (the message says which and why)."""

    code = "configuration_invalid"
    status = 500


@dataclass
class App:
    settings: Settings
    services: Services
    runner: TimerRunner | None  # None when another process (``gridflow scheduler``) has timers fired
    notifiers: list[Notifier] = field(default_factory=list)
    celery: Any = None  # the Celery app, in production processes that asked for it

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.services.db.dispose()


def build_clock(settings: Settings, db: Database | None = None) -> Clock:
    """Real time, or with ``GRIDFLOW_CLOCK_SCALE`` ≠ 1 simulated time continuing the epoch stored in
    ``db`` (so a restart never sends simulated time back; without ``db``, a timeline starting now),
    or with ``GRIDFLOW_CLOCK=manual[:ISO]`` a clock that stands still at that instant (or now) until
    an admin moves it. A manual clock is not stored: a restart starts it again where the setting says."""
    if settings.manual_clock:
        return ManualClock(settings.manual_clock_start or datetime.now(timezone.utc))
    if settings.clock_scale == 1.0:
        return SystemClock()
    real_now = datetime.now(timezone.utc)
    if db is None:
        return ScaledClock(real_now, settings.clock_scale)
    from .adapters.runtime_state import scaled_clock_epoch

    return ScaledClock.continuing(scaled_clock_epoch(db, settings.clock_scale, real_now), real_now)


def bootstrap(settings: Settings | None = None, clock: Clock | None = None, *,
              create_schema: bool | None = None, runner: str = "auto", seed: bool | None = None,
              celery: bool | None = None, runner_options: Mapping[str, Any] | None = None) -> App:
    """Wire gridflow.

    ``create_schema``: run migrations on an empty database (default: only for SQLite, the embedded
    default). A database behind or ahead of the code is always refused with the command to run.
    ``runner``: "auto" (a thread runner unless a broker is configured), "thread", "inline", "celery"
    (a scheduler handing due timers to Celery workers) or "none"; ``runner_options`` go to its constructor.
    ``celery``: build the Celery app (default: for the "celery" runner only; the worker asks for it).
    """
    settings = settings or Settings()
    if settings.manual_clock and (runner == "celery" or (runner == "auto" and settings.broker_url)):
        raise ConfigurationInvalid(
            "a manual clock needs the timer runner in this process (the embedded default): with "
            "GRIDFLOW_BROKER_URL the scheduler's own clock fires timers; unset one of them")
    db = Database(settings.database_url, busy_timeout=settings.sqlite_busy_timeout,
                  write_wait=settings.sqlite_write_wait)
    if create_schema is None:
        create_schema = settings.is_sqlite
    if create_schema and db.is_empty():
        log.info("empty database: creating the schema")
        db.upgrade()
    db.check_schema()
    clock = clock or build_clock(settings, db)
    catalog = build_catalog(settings)
    svc = Services(db=db, catalog=catalog, clock=clock, settings=settings,
                   categories=build_event_catalogue(settings, catalog))
    warn_estimated_years(catalog.calendars, clock.now())
    with svc.uow() as uow:
        catalog.sync(uow.session, clock.now())
        uow.commit()
    if seed if seed is not None else settings.seed_demo:
        if seed_demo(svc):
            log.info("seeded the demo organisation")
    _warn_unknown_calendar_units(svc)
    notifiers = notifiers_from_settings(settings, subscriber_lookup(db))
    if runner == "auto":
        runner = "none" if settings.broker_url else "thread"
    celery_app = None
    if celery if celery is not None else runner == "celery":
        from .adapters.celery_app import make_celery  # Celery is imported in production processes only

        celery_app = make_celery(settings)
    options = dict(runner_options or {})
    store = SqlTimerStore(db)
    timer_runner: TimerRunner | None = None
    if runner == "thread":
        timer_runner = ThreadTimerRunner(svc, store, notifiers, **options)
    elif runner == "inline":
        timer_runner = InlineTimerRunner(svc, store, **options)
    elif runner == "celery":
        from .adapters.timer_index import redis_client
        from .processes.celery_runner import CeleryTimerRunner

        timer_runner = CeleryTimerRunner(svc, celery_app, redis_client(settings), store=store, **options)
    return App(settings, svc, timer_runner, notifiers, celery_app)


# --- partial wiring: what a command needs when it does not run gridflow (validate, list, draw, db) ---


class EstimatedYearLog:
    """Logs a warning the first time a deadline is computed on an estimated year (once per year)."""

    def __init__(self) -> None:
        self._warned: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, calendar: str, year: int) -> None:
        with self._lock:
            if year in self._warned:
                return
            self._warned.add(year)
        log.warning("calendar %r computes deadlines in %s on an ESTIMATED arrangement: the holidays package "
                    "has no official 放假调休 notice for that year and no override file gives one, so 调休 "
                    "working days are missing and days off may be wrong; add the year to the override file "
                    "(docs/calendars.md)", calendar, year, extra={"calendar": calendar, "year": year})


def warn_estimated_years(calendars: CalendarRegistry, now: datetime) -> list[int]:
    """At start: a warning for each year deadlines may soon fall in (this one and the next) that the
    calendars only estimate. Returns those years."""
    years = calendars.estimated_years(now, now.replace(year=now.year + 1, month=1, day=1))
    for year in years:
        log.warning("calendar year %s is ESTIMATED (no official 放假调休 arrangement in the holidays "
                    "package, none in the override file): deadlines falling in it may be off by days; "
                    "see docs/calendars.md", year, extra={"year": year})
    return years


def _warn_unknown_calendar_units(svc: Services) -> None:
    """A unit calendar naming a unit the directory does not know is most likely a typo: say so."""
    assigned = svc.catalog.calendars.assignments()
    if not assigned:
        return
    from sqlmodel import select

    from .adapters.orm import Unit

    with svc.uow(write=False) as uow:
        known = set(uow.session.exec(select(Unit.code)).all())
    for unit in sorted(set(assigned) - known):
        log.warning("unit calendar %s is assigned to unit %r, which is not in the unit directory",
                    ", ".join(assigned[unit].values()), unit, extra={"unit": unit})


def _calendars(settings: Settings) -> CalendarRegistry:
    """The shipped working-time calendars, with the override file (GRIDFLOW_CALENDAR_OVERRIDES, default
    the shipped one) and the unit calendars (GRIDFLOW_UNIT_CALENDARS, default the shipped file)."""
    try:
        registry = default_registry(load_overrides(settings.calendar_overrides or SHIPPED_OVERRIDES))
        units_file = settings.unit_calendars or SHIPPED_UNIT_CALENDARS
        install_unit_calendars(registry, load_unit_calendars(units_file, registry))
    except (CalendarError, OSError) as exc:
        raise ConfigurationInvalid(f"calendar configuration refused: {exc}") from None
    on_estimated = EstimatedYearLog()
    for calendar in registry.calendars():
        if hasattr(calendar, "on_estimated"):
            calendar.on_estimated = on_estimated
    return registry


def build_catalog(settings: Settings) -> WorkflowCatalog:
    """The shipped workflows plus GRIDFLOW_WORKFLOWS_DIR, validated, without a database."""
    catalog = WorkflowCatalog(_calendars(settings))
    catalog.load_shipped()
    if settings.workflows_dir:
        catalog.add_directory(settings.workflows_dir)
    return catalog


def build_event_catalogue(settings: Settings, catalog: WorkflowCatalog):
    """The shipped event catalogue with the city's files (GRIDFLOW_CATEGORIES) over it, checked against
    the workflows ``catalog`` knows; a broken file stops the start with every problem, file and line."""
    from .engine.categories import CatalogueInvalid
    from .service.categories import build_categories

    try:
        return build_categories(catalog, settings.category_files)
    except CatalogueInvalid as exc:
        raise ConfigurationInvalid(f"event catalogue refused (GRIDFLOW_CATEGORIES): {exc}") from None


def load_definition(path, settings: Settings):
    """One YAML file (a ``str`` or ``Path``) as a ``WorkflowDefinition``, checked against this
    installation's guards and calendars; raises ``DefinitionError`` with every problem found."""
    from .engine.guards import default_guards
    from .engine.loader import load_file

    return load_file(path, guards=default_guards(), calendars=_calendars(settings).names())


def open_database(settings: Settings) -> Database:
    """The configured database, its schema unchecked (to create, upgrade or inspect it); dispose of it."""
    return Database(settings.database_url, busy_timeout=settings.sqlite_busy_timeout,
                    write_wait=settings.sqlite_write_wait)


# --- production processes: how they get their app -------------------------------------------


@dataclass(frozen=True)
class Wiring:
    """What ``gridflow scheduler`` and each Celery pool process call to get their app.

    Processes never import this module; their starters hand them a ``Wiring`` (no demo seed, the
    schema as it is: ``gridflow db upgrade`` creates it).
    """

    settings: Settings

    def __call__(self, **options: Any) -> App:
        return bootstrap(self.settings, seed=False, create_schema=False, **options)


def worker_celery(settings: Settings | None = None):
    """The Celery app with gridflow's tasks, wired: ``celery -A gridflow.bootstrap:celery worker …``."""
    from .processes.worker import register_tasks

    wiring = Wiring(settings or Settings())
    wired = wiring(runner="none", celery=True)
    wired.close()
    return register_tasks(wired.celery, wiring)


def __getattr__(name: str) -> Any:
    if name == "celery":  # what ``celery -A gridflow.bootstrap:celery`` looks up; built on first use
        app = worker_celery()
        globals()["celery"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
