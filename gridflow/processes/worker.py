"""``gridflow worker``: a Celery worker, and the bodies of its two tasks.

``gridflow.fire_timers`` fires a batch of timer ids through
:func:`gridflow.service.timers.fire_timers` (one transaction for the batch, or one
per timer when the batch meets a concurrent change; idempotent);
``gridflow.dispatch_outbox`` delivers due outbox rows (:mod:`.outbox`). The app's
configuration, and why, is :mod:`gridflow.adapters.celery_app`. Tasks retry in place
while the database is away, never with an ETA/countdown message on the broker.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from celery import Celery, signals

from ..adapters.celery_app import DISPATCH_OUTBOX, FIRE_TIMERS, OUTBOX_QUEUE, TIMER_QUEUE, make_celery
from ..adapters.timer_index import outbox_flag_key, redis_client
from ..engine.errors import StoreUnavailable
from ..logging import configure_logging, wants_json
from ..service.timers import fire_timers
from ..settings import Settings
from .contract import Wire
from .outbox import dispatch_outbox

log = logging.getLogger(__name__)
#: Pause before a worker that Celery stopped on an unrecoverable error is started again.
RESTART_DELAY_S = 1.0

# --- what a worker process holds --------------------------------------------------------------

_apps: dict[int, Any] = {}
#: How this process wires its app, handed over by whoever started the worker.
_wire: Wire | None = None
#: The settings ``run_worker`` (or ``celery -A``) built this process's app from.
_current_settings: Any = None


def _app(settings: Any) -> Any:
    """This process's wired app (services, notifiers), built on first use: after the pool forked."""
    app = _apps.get(os.getpid())
    if app is None:
        if _wire is None:
            raise RuntimeError("this Celery app was not started with its wiring: run `gridflow worker` "
                               "or `celery -A gridflow.bootstrap:celery worker`")
        app = _wire(runner="none")
        _apps.clear()
        _apps[os.getpid()] = app
    return app


def _retrying(fn, *, deadline: float, what: dict[str, Any]):
    """Run ``fn`` until it succeeds; wait 0.25 s, 0.5 s, 1 s … (at most 4 s) while the database is away.

    Gives up (re-raising) once ``deadline`` (monotonic) would pass: the task then
    fails, and the scheduler queues the unfinished timers again when their
    reservation ends — no ETA/countdown retry is ever put on the broker.
    """
    delay = 0.25
    while True:
        try:
            return fn()
        except StoreUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise exc from None
            log.warning("database unavailable, retrying in %.2fs: %s", delay, exc.message, extra=what)
            time.sleep(delay)
            delay = min(4.0, delay * 2)


def fire_batch(settings: Any, timer_ids: list[int], *, budget_s: float) -> dict[str, int]:
    """The body of ``gridflow.fire_timers``: a batch through the service, one transaction for all."""
    deadline = time.monotonic() + budget_s
    counts = {"fired": 0, "stale": 0, "missing": 0, "failed": 0}
    app = _retrying(lambda: _app(settings), deadline=deadline, what={"timer_ids": timer_ids})
    outcomes = _retrying(lambda: fire_timers(app.services, timer_ids), deadline=deadline,
                         what={"timer_ids": timer_ids})
    for outcome in outcomes:
        counts[outcome.status] += 1
        extra = {"timer_id": outcome.timer_id, "case": outcome.number}
        if outcome.status == "fired":
            log.info("timer fired", extra={**extra, "events": list(outcome.events),
                                           "lateness_s": outcome.lateness_s})
        elif outcome.status == "failed":
            # the row stays; the scheduler offers it again after its claim expires
            log.error("timer %s failed: %s", outcome.timer_id, ",".join(outcome.events), extra=extra)
        else:
            log.debug("timer %s: %s", outcome.timer_id, outcome.status, extra=extra)
    return counts


def run_outbox(settings: Any, *, budget_s: float) -> dict[str, int]:
    """The body of ``gridflow.dispatch_outbox``: deliver due rows until none are due or time is up."""
    deadline = time.monotonic() + budget_s
    app = _retrying(lambda: _app(settings), deadline=deadline, what={})
    total = {"sent": 0, "retried": 0, "dead": 0}
    while time.monotonic() < deadline:
        report = _retrying(lambda: dispatch_outbox(app.services, app.notifiers, limit=100, deadline=deadline),
                           deadline=deadline, what={})
        for k in total:
            total[k] += getattr(report, k)
        if report.handled == 0:
            break
    return total


def register_tasks(app: Celery, wire: Wire | None = None) -> Celery:
    """Give the Celery app of :func:`~gridflow.adapters.celery_app.make_celery` gridflow's two tasks.

    ``wire`` builds each pool process's app; without it the tasks are only named (``inspect``).
    """
    global _wire
    if wire is not None:
        _wire = wire
    settings = app.gridflow_settings
    limits = app.gridflow_limits

    @app.task(name=FIRE_TIMERS, acks_late=True, reject_on_worker_lost=True)
    def fire_timers_task(timer_ids: list[int]) -> dict[str, int]:
        return fire_batch(settings, timer_ids, budget_s=0.9 * limits.soft_time_limit)

    @app.task(name=DISPATCH_OUTBOX, acks_late=True, reject_on_worker_lost=True)
    def dispatch_outbox_task() -> dict[str, int]:
        try:
            return run_outbox(settings, budget_s=0.6 * limits.soft_time_limit)
        finally:
            try:  # let the scheduler queue the next round
                redis_client(settings).delete(outbox_flag_key(settings))
            except Exception:  # noqa: BLE001 - the flag expires by itself
                log.warning("could not clear the outbox flag; it expires on its own")

    return app


@signals.setup_logging.connect(weak=False, dispatch_uid="gridflow.setup_logging")
def _celery_logging(loglevel=None, **_kwargs) -> None:
    """Celery sends this instead of configuring logging itself: use gridflow's (JSON in production)."""
    settings = _current_settings or Settings()
    configure_logging(settings, role="worker")


def run_worker(wire: Wire, concurrency: int = 2, loglevel: str = "INFO") -> int:
    """``gridflow worker``: a Celery worker on both gridflow queues; blocks until stopped (Ctrl-C: warm)."""
    global _current_settings
    settings = wire.settings.model_copy(update={"log_level": loglevel})
    _current_settings = settings
    configure_logging(settings, role="worker")
    # Check the database and register the workflow definitions once, then let go of the
    # connections: each pool process opens its own after the fork.
    wired = wire(runner="none", celery=True)
    wired.close()
    app = register_tasks(wired.celery, wire)
    asked_to_stop: list[str] = []

    @signals.worker_shutting_down.connect(weak=False)
    def _asked(sig=None, **_kwargs) -> None:  # SIGTERM, SIGINT, SIGQUIT: a shutdown somebody wanted
        asked_to_stop.append(str(sig))

    while True:
        worker = app.Worker(
            hostname=f"gridflow-{os.getpid()}@{socket.gethostname()}",
            concurrency=concurrency, loglevel=loglevel, pool="prefork",
            queues=[TIMER_QUEUE, OUTBOX_QUEUE],
            without_gossip=True, without_mingle=True, without_heartbeat=True,
            quiet=wants_json(settings),  # no banner between the JSON lines
        )
        worker.start()
        if asked_to_stop or not worker.exitcode:
            return worker.exitcode or 0
        # Celery gave up on an error it calls unrecoverable — kombu's Redis transport does so when the
        # broker restarts while a message is unacknowledged (celery/kombu#970-style). Nothing is lost:
        # the timers stay claimed in the database and are offered again; start a fresh worker.
        log.warning("Celery worker stopped on an unrecoverable error; starting it again in %.0f s",
                    RESTART_DELAY_S)
        time.sleep(RESTART_DELAY_S)


def __getattr__(name: str):
    """``celery -A gridflow.processes.worker inspect …`` finds ``app`` (tasks named, not wired), built from
    the environment; a worker that runs tasks is ``gridflow worker`` or
    ``celery -A gridflow.bootstrap:celery worker``."""
    if name in ("app", "celery"):
        global _current_settings
        if _current_settings is None:
            _current_settings = Settings()
        built = register_tasks(make_celery(_current_settings))
        globals()["app"] = built
        return built
    raise AttributeError(name)
