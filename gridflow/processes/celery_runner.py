"""The Celery runner: a Redis index of pending timers, and the hand-over of due ones to Celery workers.

The database holds the truth — a timer exists because its row exists — and this
process keeps Redis as an *index* of it: one sorted set, member = timer id,
score = due time (Unix seconds). Each cycle it

1. checks the index is whole: a marker key, written when a build finished and
   carrying Redis's ``run_id``, is gone after FLUSHDB or eviction and stale after
   a restart; then the index is rebuilt from the timers table (in chunks,
   between dispatches) and every reservation is released, since the queued
   tasks may have gone with the data;
2. tails the timers table by id for timers created since (ids only grow;
   an id skipped by a transaction that had not committed yet is re-checked
   for a minute);
3. pops the due members atomically (a Lua script, so two schedulers never pop
   the same one), *reserves* them in the database (``status='claimed'`` until
   now + ``GRIDFLOW_TIMER_CLAIM_SECONDS``; rows already fired, cancelled or
   reserved by someone else are dropped), and queues them as
   ``gridflow.fire_timers`` tasks of ``task_size`` ids — only as fast as
   workers drain the queue;
4. every few seconds, sweeps the database for due timers that are neither in
   flight nor indexed (a scheduler died between pop and send, a reservation
   ran out because a worker died, Redis lost data): the safety net that makes
   Redis losing anything a delay, never a loss;
5. prunes index members whose rows are gone (cancelled deadlines), a slice
   per cycle; and queues a ``gridflow.dispatch_outbox`` task while outbox rows
   are due.

``gridflow scheduler`` (:mod:`gridflow.processes.scheduler`) runs one in the
foreground; :class:`CeleryTimerRunner` runs one in a thread.

Exactly-once is not the scheduler's job: a timer may be queued twice (two
schedulers racing a sweep, a worker dying after committing), and firing is
idempotent — the worker locks the row, and the transaction that records the
breach also deletes it. Several schedulers can run at once; they share the
work through the atomic pop and the database reservations.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis
from kombu.exceptions import KombuError

from ..adapters.celery_app import DISPATCH_OUTBOX, FIRE_TIMERS, OUTBOX_QUEUE, TIMER_QUEUE, timer_queue
from ..adapters.outbox import SqlOutbox
from ..adapters.timer_index import TimerIndex, outbox_flag_key
from ..adapters.timer_store import SqlTimerStore
from ..engine.errors import GridflowError
from ..service.context import Services
from .contract import FIRE_BATCH, RunnerStatus

log = logging.getLogger(__name__)

UTC = timezone.utc

REBUILD_CHUNK = 10_000
TAIL_LIMIT = 5_000
#: An id the tail skipped is looked for again this long (a transaction that took it may commit late).
GAP_GRACE_S = 60.0
MAX_GAPS = 20_000
PRUNE_CHUNK = 2_000


#: What a cycle meets when Redis, the database or the broker is away: logged as a warning, waited out.
_EXPECTED = (redis.RedisError, GridflowError, OSError, KombuError)


def _ts(at: datetime) -> float:
    return at.timestamp()


@dataclass
class _Rebuild:
    token: str | None  # None: the start-up pass over an index that is whole (no lock, no marker)
    after_id: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class SchedulerStats:
    dispatched: int = 0
    tasks: int = 0
    dropped: int = 0
    rebuilds: int = 0
    swept: int = 0
    pruned: int = 0
    errors: int = 0


class Scheduler:
    """One scheduler process's state; :meth:`step` does one cycle and says how long to sleep."""

    def __init__(self, settings: Any, svc: Services, client: redis.Redis, celery, *,
                 store: SqlTimerStore | None = None, name: str | None = None, task_size: int = FIRE_BATCH,
                 max_queued_tasks: int = 64, poll_interval: float | None = None,
                 sweep_interval: float | None = None, linger: float = 0.1) -> None:
        self.settings = settings
        self.svc = svc
        self.clock = svc.clock
        self.index = TimerIndex(client, settings)
        self.table = store or SqlTimerStore(svc.db)
        self.outbox = SqlOutbox(svc.db)
        self.celery = celery
        self.name = name or f"scheduler-{socket.gethostname()}-{os.getpid()}"
        self.task_size = max(1, task_size)
        #: Cycles failed in a row (0 after one that worked): what /healthz calls a failing runner.
        self.failures = 0
        self.max_queued_tasks = max(1, max_queued_tasks)
        self.poll = poll_interval if poll_interval is not None else min(1.0, settings.timer_poll_interval)
        self.sweep_every = sweep_interval if sweep_interval is not None else max(1.0, 10 * self.poll)
        self.batch = max(1, min(settings.timer_batch_size, 5_000))
        self.linger = max(0.0, linger)
        self.stats = SchedulerStats()
        self._rebuild: _Rebuild | None = None
        self._run_id: str | None = None
        self._hw: int | None = None
        self._gaps: dict[int, float] = {}
        self._prune_at = 0
        self._last_sweep = 0.0
        self._last_tail = 0.0
        self._tail_more = False
        self._backlogged = False
        self._last_prune = 0.0
        self._last_outbox = 0.0
        self._last_report = time.monotonic()
        self._queue_client, self._queue_key = timer_queue(settings)

    # -- Celery's queue, for back-pressure --

    def close(self) -> None:
        if self._queue_client is not None:
            self._queue_client.close()

    def queued_tasks(self) -> int:
        return int(self._queue_client.llen(self._queue_key)) if self._queue_client is not None else 0

    # -- the cycle --

    def start(self) -> None:
        """Rebuild from the database at start: a lost index with the lock, a whole one as a refresh."""
        self._hw = max(0, self.table.max_id() - 1_000)  # re-read the newest ids: some may commit late
        if not self._index_lost():
            self._rebuild = _Rebuild(token=None)
            log.info("refreshing the timer index from the database", extra={"scheduler": self.name})
        try:
            policy = self.index.r.config_get("maxmemory-policy").get("maxmemory-policy", "noeviction")
        except redis.ResponseError:  # CONFIG may be disabled on a managed Redis
            policy = "unknown"
        if policy not in ("noeviction", "unknown"):
            log.warning("Redis maxmemory-policy is %s: evicted index entries fire only at the next sweep; "
                        "use noeviction", policy)

    def step(self) -> float:
        now = self.clock.now()
        if self._rebuild is None:
            self._index_lost()
        busy = False
        if self._rebuild is not None:
            busy = self._rebuild_step()
        mono = time.monotonic()
        if self._tail_more or mono - self._last_tail >= self.poll:
            self._last_tail = mono
            self._tail_more = self._tail()
            busy = busy or self._tail_more
        if mono - self._last_sweep >= self.sweep_every:
            self._last_sweep = mono
            self._run_id = None  # a Redis restarted from a snapshot keeps the marker: its run_id tells
            self._sweep(now)
        if mono - self._last_prune >= 1.0:
            self._last_prune = mono
            self._prune()
        full = self._dispatch(now)
        if mono - self._last_outbox >= max(self.poll, 1.0):
            self._last_outbox = mono
            self._queue_outbox()
        self._report(mono)
        if busy or full:
            return 0.0
        if self._backlogged:
            return min(self.poll, 0.05)  # workers are behind: look again soon, without spinning
        nxt = self.index.next_due()
        if nxt is None:
            return self.poll
        # Wake a little after the next due time, so that what falls due together leaves in one task.
        return min(self.poll, max(0.005, nxt + self.linger - _ts(self.clock.now())))

    def _index_lost(self) -> bool:
        """Start a rebuild if Redis lost the index (no marker, or a marker from before a restart)."""
        if self._run_id is None:
            self._run_id = self.index.run_id()
        marker = self.index.marker()
        if marker is not None and marker.get("redis_run_id") == self._run_id:
            return False
        token = uuid.uuid4().hex
        if not self.index.try_lock(token):
            return True  # another scheduler is rebuilding; our sweeps cover due timers meanwhile
        released = self.table.release_all()
        self.stats.rebuilds += 1
        log.warning("timer index missing (%s): rebuilding it from the database; %d reservations released",
                    "Redis restarted" if marker else "Redis flushed, restarted or new",
                    released, extra={"scheduler": self.name})
        self._rebuild = _Rebuild(token=token)
        self._sweep(self.clock.now())  # what is already due goes first
        return True

    def _rebuild_step(self) -> bool:
        rb = self._rebuild
        assert rb is not None
        rows = self.table.after(rb.after_id, REBUILD_CHUNK)
        self.index.add(rows)
        rb.rows += len(rows)
        if rows:
            rb.after_id = rows[-1][0]
        if rb.token is not None and not self.index.keep_lock(rb.token):
            log.warning("timer index rebuild interrupted (Redis lost data again): starting over")
            self._rebuild = None
            return True
        if len(rows) == REBUILD_CHUNK:
            return True
        if rb.token is not None:
            marker = {"redis_run_id": self._run_id, "built_at": datetime.now(UTC).isoformat(),
                      "by": self.name,
                      "timers": rb.rows}
            if not self.index.finish(rb.token, marker):
                self._rebuild = None
                return True
        log.info("timer index built: %d timers in %.1fs", rb.rows, time.monotonic() - rb.started,
                 extra={"scheduler": self.name, "timers": rb.rows})
        self._rebuild = None
        return False

    def _tail(self) -> bool:
        """Index timers created since the last look; True if there may be more right away."""
        if self._hw is None:
            self._hw = self.table.max_id()
        rows = self.table.after(self._hw, TAIL_LIMIT)
        mono = time.monotonic()
        expect = self._hw + 1
        for timer_id, _due in rows:
            if timer_id > expect and len(self._gaps) < MAX_GAPS:
                for missing in range(expect, min(timer_id, expect + MAX_GAPS - len(self._gaps))):
                    self._gaps[missing] = mono
            expect = timer_id + 1
        if self._gaps:
            found = self.table.by_ids(list(self._gaps)[:5_000])
            for timer_id, _due in found:
                self._gaps.pop(timer_id, None)
            rows = rows + found
            for gap, seen in list(self._gaps.items()):
                if mono - seen > GAP_GRACE_S:
                    del self._gaps[gap]
        if rows:
            self.index.add(rows)
            self._hw = max(self._hw, max(r[0] for r in rows))
        return len(rows) >= TAIL_LIMIT

    def _sweep(self, now: datetime) -> None:
        """The safety net: due timers nobody has in hand go (back) into the index."""
        rows = self.table.unattended(now, 10_000)
        if rows:
            self.index.add(rows)
            self.stats.swept += len(rows)

    def _prune(self) -> None:
        """Drop a slice of members whose rows are gone (cancelled deadlines), a slice per call."""
        ids = self.index.slice(self._prune_at, PRUNE_CHUNK)
        if not ids:
            self._prune_at = 0
            return
        gone = set(ids) - self.table.existing(ids)
        removed = self.index.remove(gone)
        self.stats.pruned += removed
        self._prune_at = 0 if len(ids) < PRUNE_CHUNK else self._prune_at + len(ids) - removed

    def _dispatch(self, now: datetime) -> bool:
        """Queue due timers as tasks; True if it filled a whole batch (more may be due)."""
        room = self.max_queued_tasks - self.queued_tasks()
        self._backlogged = room <= 0
        if self._backlogged:
            return False
        popped = self.index.pop_due(now, min(self.batch, room * self.task_size))
        if not popped:
            return False
        try:
            claimed = [i for i, _ in self.table.claim(now, self.name, self.settings.timer_claim_seconds,
                                                      ids=[i for i, _ in popped])]
        except Exception:
            self.index.put_back(popped)
            raise
        self.stats.dropped += len(popped) - len(claimed)
        for start in range(0, len(claimed), self.task_size):
            chunk = claimed[start:start + self.task_size]
            try:
                self.celery.send_task(FIRE_TIMERS, args=[chunk], queue=TIMER_QUEUE)
            except Exception:
                unsent = claimed[start:]
                self.table.release(unsent, self.name)
                self.index.put_back([(i, s) for i, s in popped if i in set(unsent)])
                raise
            self.stats.tasks += 1
            self.stats.dispatched += len(chunk)
            log.debug("queued %d timers", len(chunk), extra={"timer_ids": chunk})
        return len(popped) == min(self.batch, room * self.task_size)

    def _queue_outbox(self) -> None:
        if not self.outbox.has_due(self.clock.now()):
            return
        if self.index.r.set(outbox_flag_key(self.settings), self.name, nx=True, ex=60):
            self.celery.send_task(DISPATCH_OUTBOX, queue=OUTBOX_QUEUE)

    def _report(self, mono: float) -> None:
        if mono - self._last_report < 30:
            return
        self._last_report = mono
        s = self.stats
        log.info("scheduler: %d timers queued in %d tasks, %d dropped, %d swept, %d pruned, %d rebuilds",
                 s.dispatched, s.tasks, s.dropped, s.swept, s.pruned, s.rebuilds,
                 extra={"scheduler": self.name, "index_size": self.index.size(),
                        "queued_tasks": self.queued_tasks(),
                        **vars(s)})

    def run(self, stop: threading.Event) -> None:
        """Cycle until ``stop`` is set; Redis or the database going away is waited out with backoff."""
        self.failures = 0
        started = False
        while not stop.is_set():
            try:
                if not started:
                    self.start()
                    started = True
                delay = self.step()
                self.failures = 0
            except Exception as exc:  # Redis, the database or the broker away: wait it out, never exit
                self.failures += 1
                self.stats.errors += 1
                self._run_id = None  # Redis may come back as a new instance: look again
                delay = min(10.0, 0.25 * 2 ** min(self.failures, 6))
                expected = isinstance(exc, _EXPECTED)
                log.log(logging.WARNING if expected else logging.ERROR,
                        "scheduler cycle failed (%s), retrying in %.1fs: %s", type(exc).__name__, delay, exc,
                        exc_info=not expected, extra={"scheduler": self.name})
            if delay:
                stop.wait(delay)


class CeleryTimerRunner:
    """The Celery runner as one object: a :class:`Scheduler` here, the firing in Celery workers.

    ``start`` runs the scheduler in a thread (embedded, or in tests); ``gridflow scheduler``
    calls :meth:`run` in the foreground instead. ``status`` counts what this side sees: the
    timers it handed over are in ``Scheduler.stats``, the firings in the workers' logs.
    """

    kind = "celery"

    def __init__(self, svc: Services, celery, client: redis.Redis, **options: Any) -> None:
        self.client = client
        self.scheduler = Scheduler(svc.settings, svc, client, celery, **options)
        self.name = self.scheduler.name
        self._running = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> RunnerStatus:
        """Running, and the scheduler's failed cycles; what was fired is counted by the workers."""
        return RunnerStatus(self.kind, running=self._running, errors=self.scheduler.stats.errors,
                            consecutive_failures=self.scheduler.failures)

    def run(self, stop: threading.Event) -> None:
        """Schedule until ``stop`` is set (blocks)."""
        self._running = True
        try:
            self.scheduler.run(stop)
        finally:
            self._running = False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name=self.name, daemon=True)
        self._running = True
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self.scheduler.close()
        self.client.close()
