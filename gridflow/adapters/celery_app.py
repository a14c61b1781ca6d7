"""The Celery side of production mode: the app, its settings, the tasks, and ``gridflow worker``.

Two tasks, both thin: ``gridflow.fire_timers`` fires a batch of timer ids
through :func:`gridflow.service.timers.fire_timers` (one transaction for the
batch, or one per timer when the batch meets a concurrent change; idempotent:
a timer that was already fired or cancelled is simply not there);
``gridflow.dispatch_outbox`` delivers due outbox rows
(:mod:`gridflow.adapters.outbox`). The tasks are queued by ``gridflow
scheduler`` (:mod:`gridflow.adapters.scheduler`) only once their timers are
due. Deadlines are never Celery ETA/countdown tasks: with the Redis broker a
worker takes every ETA message it can see and holds it in memory, unacknowledged,
until it is due, whatever the prefetch limit (celery/celery#2218, #9849), and
Redis hands it to another worker once ``visibility_timeout`` has passed, so a
deadline further away than that runs twice or more (celery/kombu#337,
celery/celery#4400, #7009; the Redis broker guide's "Caveats"). The same
applies to ``self.retry(countdown=…)``, so tasks here retry in place instead.

Settings, and why (all derived from ``GRIDFLOW_TIMER_CLAIM_SECONDS`` = C, the
time the scheduler reserves a timer for the task it sent):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged
  after its task ran; if the pool process running it is killed, the message goes
  back to the queue instead of being acknowledged as failed (Celery acknowledges
  in that case unless ``reject_on_worker_lost`` is set — Tasks guide, "acks_late").
  Running a batch again is safe because firing is idempotent.
- ``worker_prefetch_multiplier = 1``: each pool process reserves one batch
  beyond the one it runs; a batch is short, and more would only strand work in a
  worker that might die (Optimizing guide, "Prefetch limits").
- ``task_time_limit = C/2`` (soft limit 0.4·C): a task finishes, or is stopped,
  before its timers' reservation runs out; unfinished timers are reserved again
  by the scheduler after C.
- ``visibility_timeout = 2·C``: longer than any task can run, plus the one batch
  a process may hold in reserve, so Redis never redelivers a message that is
  still being worked on; a worker that dies outright (SIGKILL, power loss) has
  its messages restored after it (Redis broker guide, "Visibility timeout").
- ``global_keyprefix``: every broker key starts with ``GRIDFLOW_REDIS_PREFIX``,
  so several deployments (or test runs) can share one Redis database.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue

from ..logging import configure_logging, wants_json

log = logging.getLogger(__name__)

TIMER_QUEUE = "gridflow.timers"
OUTBOX_QUEUE = "gridflow.outbox"
FIRE_TIMERS = "gridflow.fire_timers"
DISPATCH_OUTBOX = "gridflow.dispatch_outbox"


@dataclass(frozen=True)
class Limits:
    """Time limits and the broker visibility timeout, all from the claim time (see the module docstring)."""

    claim_seconds: float
    soft_time_limit: float
    time_limit: float
    visibility_timeout: int

    @classmethod
    def from_settings(cls, settings: Any) -> "Limits":
        claim = float(settings.timer_claim_seconds)
        return cls(claim, 0.4 * claim, 0.5 * claim, max(2, int(round(2 * claim))))


def broker_keyprefix(settings: Any) -> str:
    return f"{settings.redis_prefix}:broker:"


def make_celery(settings: Any) -> Celery:
    """A Celery app for ``settings`` with gridflow's two tasks registered; no connection is made yet."""
    if not settings.broker_url:
        raise ValueError("production mode needs GRIDFLOW_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    limits = Limits.from_settings(settings)
    app = Celery("gridflow", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options={"visibility_timeout": limits.visibility_timeout,
                                  "global_keyprefix": broker_keyprefix(settings)},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a Redis restart is waited out, not fatal
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in (TIMER_QUEUE, OUTBOX_QUEUE)],
        task_default_queue=TIMER_QUEUE,
        task_routes={FIRE_TIMERS: {"queue": TIMER_QUEUE}, DISPATCH_OUTBOX: {"queue": OUTBOX_QUEUE}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A batch whose broker connection is gone cannot be acknowledged any more and will be
        # redelivered: stop it rather than run it twice side by side (celery/celery#6654; the
        # default from Celery 6). Its timers come back when their reservation ends.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=limits.soft_time_limit,
        task_time_limit=limits.time_limit,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_disable_rate_limits=True,
        enable_utc=True,
        timezone="UTC",
    )
    app.gridflow_settings = settings
    app.gridflow_limits = limits
    _register_tasks(app)
    return app


# --- what a worker process holds --------------------------------------------------------------

_services_cache: dict[int, Any] = {}
_notifiers_cache: dict[int, list] = {}  # one webhook client per process, kept open between tasks
#: The settings ``run_worker`` (or ``celery -A``) built this process's app from.
_current_settings: Any = None


def _services(settings: Any):
    """This process's wired services, built on first use (after the pool forked, never before)."""
    svc = _services_cache.get(os.getpid())
    if svc is None:
        from ..bootstrap import bootstrap

        svc = bootstrap(settings, runner="none", seed=False, create_schema=False).services
        _services_cache.clear()
        _services_cache[os.getpid()] = svc
    return svc


def _retrying(fn, *, deadline: float, what: dict[str, Any]):
    """Run ``fn`` until it succeeds; wait 0.25 s, 0.5 s, 1 s … (at most 4 s) while the database is away.

    Gives up (re-raising) once ``deadline`` (monotonic) would pass: the task then
    fails, and the scheduler queues the unfinished timers again when their
    reservation ends — no ETA/countdown retry is ever put on the broker.
    """
    from sqlalchemy.exc import OperationalError

    from .db import DatabaseUnavailable

    delay = 0.25
    while True:
        try:
            return fn()
        except (DatabaseUnavailable, OperationalError) as exc:
            if isinstance(exc, OperationalError):  # raised outside the service layer (bootstrap)
                exc = DatabaseUnavailable(f"database unreachable: {exc.orig}")
            if time.monotonic() + delay > deadline:
                raise exc from None
            log.warning("database unavailable, retrying in %.2fs: %s", delay, exc.message, extra=what)
            time.sleep(delay)
            delay = min(4.0, delay * 2)


def fire_batch(settings: Any, timer_ids: list[int], *, budget_s: float) -> dict[str, int]:
    """Fire a batch through the service, one transaction for all (``fire_timers``); the body of
    ``gridflow.fire_timers``. A batch that meets a concurrent change is fired one by one by the service."""
    from ..service.timers import fire_timers

    deadline = time.monotonic() + budget_s
    counts = {"fired": 0, "stale": 0, "missing": 0, "failed": 0}
    svc = _retrying(lambda: _services(settings), deadline=deadline, what={"timer_ids": timer_ids})
    outcomes = _retrying(lambda: fire_timers(svc, timer_ids), deadline=deadline, what={"timer_ids": timer_ids})
    for outcome in outcomes:
        counts[outcome.status] += 1
        extra = {"timer_id": outcome.timer_id, "case": outcome.number}
        if outcome.status == "fired":
            log.info("timer fired", extra={**extra, "events": list(outcome.events), "lateness_s": outcome.lateness_s})
        elif outcome.status == "failed":
            # the row stays; the scheduler offers it again after its claim expires
            log.error("timer %s failed: %s", outcome.timer_id, ",".join(outcome.events), extra=extra)
        else:
            log.debug("timer %s: %s", outcome.timer_id, outcome.status, extra=extra)
    return counts


def run_outbox(settings: Any, *, budget_s: float) -> dict[str, int]:
    """Deliver due outbox rows until none are due or the budget is spent; the body of ``gridflow.dispatch_outbox``."""
    from .notifiers import notifiers_from_settings
    from .outbox import dispatch_outbox

    deadline = time.monotonic() + budget_s
    svc = _retrying(lambda: _services(settings), deadline=deadline, what={})
    notifiers = _notifiers_cache.get(os.getpid())
    if notifiers is None:
        notifiers = _notifiers_cache[os.getpid()] = notifiers_from_settings(settings)
    total = {"sent": 0, "retried": 0, "dead": 0}
    while time.monotonic() < deadline:
        report = _retrying(lambda: dispatch_outbox(svc, notifiers, limit=100, deadline=deadline),
                           deadline=deadline, what={})
        for k in total:
            total[k] += getattr(report, k)
        if report.handled == 0:
            break
    return total


def _register_tasks(app: Celery) -> None:
    settings = app.gridflow_settings
    limits = app.gridflow_limits

    @app.task(name=FIRE_TIMERS, acks_late=True, reject_on_worker_lost=True)
    def fire_timers(timer_ids: list[int]) -> dict[str, int]:
        return fire_batch(settings, timer_ids, budget_s=0.9 * limits.soft_time_limit)

    @app.task(name=DISPATCH_OUTBOX, acks_late=True, reject_on_worker_lost=True)
    def dispatch_outbox_task() -> dict[str, int]:
        from .scheduler import outbox_flag_key, redis_client

        try:
            return run_outbox(settings, budget_s=0.6 * limits.soft_time_limit)
        finally:
            try:  # let the scheduler queue the next round
                redis_client(settings).delete(outbox_flag_key(settings))
            except Exception:  # noqa: BLE001 - the flag expires by itself
                log.warning("could not clear the outbox flag; it expires on its own")


@signals.setup_logging.connect(weak=False, dispatch_uid="gridflow.setup_logging")
def _celery_logging(loglevel=None, **_kwargs) -> None:
    """Celery sends this instead of configuring logging itself: use gridflow's (JSON in production)."""
    from ..settings import Settings

    settings = _current_settings or Settings()
    configure_logging(settings, role="worker")


def run_worker(settings: Any, concurrency: int = 2, loglevel: str = "INFO") -> int:
    """``gridflow worker``: a Celery worker on both gridflow queues; blocks until stopped (Ctrl-C: warm shutdown)."""
    global _current_settings
    settings = settings.model_copy(update={"log_level": loglevel})
    _current_settings = settings
    configure_logging(settings, role="worker")
    from ..bootstrap import bootstrap

    # Check the database and register the workflow definitions once, then let go of the
    # connections: each pool process opens its own after the fork.
    bootstrap(settings, runner="none", seed=False, create_schema=False).close()
    app = make_celery(settings)
    worker = app.Worker(
        hostname=f"gridflow-{os.getpid()}@{socket.gethostname()}",
        concurrency=concurrency, loglevel=loglevel, pool="prefork",
        queues=[TIMER_QUEUE, OUTBOX_QUEUE],
        without_gossip=True, without_mingle=True, without_heartbeat=True,
        quiet=wants_json(settings),  # no banner between the JSON lines
    )
    worker.start()
    return worker.exitcode or 0


def __getattr__(name: str):
    """``celery -A gridflow.adapters.celery_app inspect …`` finds ``app``, built from the environment on first use."""
    if name in ("app", "celery"):
        from ..settings import Settings

        global _current_settings
        if _current_settings is None:
            _current_settings = Settings()
        built = make_celery(_current_settings)
        globals()["app"] = built
        return built
    raise AttributeError(name)
