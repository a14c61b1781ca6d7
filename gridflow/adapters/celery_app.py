"""The Celery app of production mode: its queues, routing, limits and broker settings (no task bodies).

Two tasks run on it, both thin and defined by the worker process
(:mod:`gridflow.processes.worker`): ``gridflow.fire_timers`` fires a batch of
timer ids through :func:`gridflow.service.timers.fire_timers` (idempotent: a
timer that was already fired or cancelled is simply not there), and
``gridflow.dispatch_outbox`` delivers due outbox rows
(:mod:`gridflow.processes.outbox`). The tasks are queued by ``gridflow
scheduler`` (:mod:`gridflow.processes.celery_runner`) only once their timers
are due. Deadlines are never Celery ETA/countdown tasks: with the Redis broker a
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

from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from kombu import Exchange, Queue

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
    """A Celery app for ``settings``; its tasks are registered by the worker. No connection is made yet."""
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
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q)
                     for q in (TIMER_QUEUE, OUTBOX_QUEUE)],
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
    return app


def timer_queue(settings: Any) -> tuple[redis.Redis | None, str | None]:
    """A broker client and the timer queue's key in it, to measure back-pressure (Redis brokers only)."""
    url = settings.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None, None
    return redis.Redis.from_url(url, socket_timeout=10), broker_keyprefix(settings) + TIMER_QUEUE
