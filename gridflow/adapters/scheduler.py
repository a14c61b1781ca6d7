"""``gridflow scheduler``: a Redis index of pending timers, and the hand-over of due ones to Celery.

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

Exactly-once is not the scheduler's job: a timer may be queued twice (two
schedulers racing a sweep, a worker dying after committing), and firing is
idempotent — the worker locks the row, and the transaction that records the
breach also deletes it. Several schedulers can run at once; they share the
work through the atomic pop and the database reservations.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

import redis
import sqlalchemy as sa
from kombu.exceptions import KombuError
from sqlalchemy.exc import OperationalError

from ..engine.errors import GridflowError
from ..logging import configure_logging
from .orm import TimerRow

log = logging.getLogger(__name__)

_TIMERS = TimerRow.__table__
UTC = timezone.utc

REBUILD_CHUNK = 10_000
TAIL_LIMIT = 5_000
#: An id the tail skipped is looked for again this long (a transaction that took it may commit late).
GAP_GRACE_S = 60.0
MAX_GAPS = 20_000
PRUNE_CHUNK = 2_000
LOCK_TTL_MS = 60_000


def index_key(settings: Any) -> str:
    return f"{settings.redis_prefix}:timers:index"


def marker_key(settings: Any) -> str:
    return f"{settings.redis_prefix}:timers:marker"


def rebuild_lock_key(settings: Any) -> str:
    return f"{settings.redis_prefix}:timers:rebuild"


def outbox_flag_key(settings: Any) -> str:
    return f"{settings.redis_prefix}:outbox:queued"


def redis_client(settings: Any) -> redis.Redis:
    url = settings.timer_index_url
    if not url:
        raise ValueError("the scheduler needs GRIDFLOW_REDIS_URL or GRIDFLOW_BROKER_URL")
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)


def _ts(at: datetime) -> float:
    return at.timestamp()


# --- Redis: the index -------------------------------------------------------------------------

_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local ids = {}
for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return due
"""
_IF_TOKEN_EXPIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_IF_TOKEN_FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"""


class TimerIndex:
    """The sorted set (member = timer id, score = due time) and its marker, in one Redis."""

    def __init__(self, client: redis.Redis, settings: Any) -> None:
        self.r = client
        self.key = index_key(settings)
        self.marker_key = marker_key(settings)
        self.lock_key = rebuild_lock_key(settings)
        self._pop = client.register_script(_POP_DUE)
        self._expire = client.register_script(_IF_TOKEN_EXPIRE)
        self._finish = client.register_script(_IF_TOKEN_FINISH)

    def add(self, pairs: Iterable[tuple[int, datetime]]) -> int:
        n = 0
        pipe = self.r.pipeline(transaction=False)
        mapping: dict[str, float] = {}
        for timer_id, due in pairs:
            mapping[str(timer_id)] = _ts(due)
            if len(mapping) >= 5_000:
                pipe.zadd(self.key, mapping)
                n += len(mapping)
                mapping = {}
        if mapping:
            pipe.zadd(self.key, mapping)
            n += len(mapping)
        if n:
            pipe.execute()
        return n

    def pop_due(self, now: datetime, limit: int) -> list[tuple[int, float]]:
        """Remove and return up to ``limit`` members due by ``now``, earliest first; atomic across schedulers."""
        flat = self._pop(keys=[self.key], args=[repr(_ts(now)), min(limit, 5_000)])
        return [(int(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]

    def put_back(self, popped: Sequence[tuple[int, float]]) -> None:
        if popped:
            self.r.zadd(self.key, {str(i): s for i, s in popped})

    def next_due(self) -> float | None:
        first = self.r.zrange(self.key, 0, 0, withscores=True)
        return first[0][1] if first else None

    def size(self) -> int:
        return int(self.r.zcard(self.key))

    def slice(self, start: int, count: int) -> list[int]:
        return [int(m) for m in self.r.zrange(self.key, start, start + count - 1)]

    def remove(self, ids: Iterable[int]) -> int:
        members = [str(i) for i in ids]
        return int(self.r.zrem(self.key, *members)) if members else 0

    def run_id(self) -> str:
        return str(self.r.info("server")["run_id"])

    def marker(self) -> dict | None:
        raw = self.r.get(self.marker_key)
        return json.loads(raw) if raw else None

    def try_lock(self, token: str) -> bool:
        return bool(self.r.set(self.lock_key, token, nx=True, px=LOCK_TTL_MS))

    def keep_lock(self, token: str) -> bool:
        return bool(self._expire(keys=[self.lock_key], args=[token, LOCK_TTL_MS]))

    def finish(self, token: str, marker: dict) -> bool:
        """Write the marker if our rebuild lock survived (a flush during the rebuild removes it)."""
        return bool(self._finish(keys=[self.lock_key, self.marker_key], args=[token, json.dumps(marker)]))


# --- PostgreSQL: the truth --------------------------------------------------------------------

class TimerTable:
    """The few statements the scheduler runs on the timers table (Core SQL, outside the case repository)."""

    def __init__(self, db) -> None:
        self.db = db
        self.pg = db.dialect == "postgresql"

    def _rows(self, stmt) -> list[tuple[int, datetime]]:
        with self.db.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(stmt)]

    def max_id(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(_TIMERS.c.id))).scalar() or 0)

    def after(self, after_id: int, limit: int) -> list[tuple[int, datetime]]:
        return self._rows(sa.select(_TIMERS.c.id, _TIMERS.c.due_at).where(_TIMERS.c.id > after_id)
                          .order_by(_TIMERS.c.id).limit(limit))

    def by_ids(self, ids: Sequence[int]) -> list[tuple[int, datetime]]:
        if not ids:
            return []
        return self._rows(sa.select(_TIMERS.c.id, _TIMERS.c.due_at).where(_TIMERS.c.id.in_(list(ids))))

    def unattended(self, now: datetime, limit: int) -> list[tuple[int, datetime]]:
        """Due timers that nobody has in hand: pending, or reserved by a runner whose reservation ran out."""
        return self._rows(
            sa.select(_TIMERS.c.id, _TIMERS.c.due_at)
            .where(_TIMERS.c.due_at <= now,
                   sa.or_(_TIMERS.c.status == "pending",
                          sa.and_(_TIMERS.c.status == "claimed", _TIMERS.c.claim_expires_at < now)))
            .order_by(_TIMERS.c.due_at).limit(limit))

    def claim(self, ids: Sequence[int], now: datetime, runner: str, seconds: float) -> list[int]:
        """Reserve those of ``ids`` that still exist, are due and are not in someone else's hands."""
        if not ids:
            return []
        free = (sa.select(_TIMERS.c.id)
                .where(_TIMERS.c.id.in_(list(ids)), _TIMERS.c.due_at <= now,
                       sa.or_(_TIMERS.c.status == "pending",
                              sa.and_(_TIMERS.c.status == "claimed", _TIMERS.c.claim_expires_at < now))))
        if self.pg:  # a row a worker is firing right now is locked: skip it rather than wait
            free = free.with_for_update(skip_locked=True)
        stmt = (sa.update(_TIMERS).where(_TIMERS.c.id.in_(free.scalar_subquery()))
                .values(status="claimed", claimed_by=runner, claim_expires_at=now + timedelta(seconds=seconds))
                .returning(_TIMERS.c.id))
        with self.db.connect() as conn, conn.begin():
            return sorted(r[0] for r in conn.execute(stmt))

    def release(self, ids: Sequence[int], runner: str) -> None:
        if not ids:
            return
        with self.db.connect() as conn, conn.begin():
            conn.execute(sa.update(_TIMERS)
                         .where(_TIMERS.c.id.in_(list(ids)), _TIMERS.c.claimed_by == runner)
                         .values(status="pending", claimed_by=None, claim_expires_at=None))

    def release_all(self) -> int:
        with self.db.connect() as conn, conn.begin():
            return conn.execute(sa.update(_TIMERS).where(_TIMERS.c.status == "claimed")
                                .values(status="pending", claimed_by=None, claim_expires_at=None)).rowcount

    def existing(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        with self.db.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(_TIMERS.c.id).where(_TIMERS.c.id.in_(list(ids))))}


# --- the loop ---------------------------------------------------------------------------------

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

    def __init__(self, settings: Any, svc, client: redis.Redis, celery, *, name: str | None = None,
                 task_size: int = 50, max_queued_tasks: int = 64, poll_interval: float | None = None,
                 sweep_interval: float | None = None, linger: float = 0.1) -> None:
        self.settings = settings
        self.svc = svc
        self.clock = svc.clock
        self.index = TimerIndex(client, settings)
        self.table = TimerTable(svc.db)
        self.celery = celery
        self.name = name or f"scheduler-{socket.gethostname()}-{os.getpid()}"
        self.task_size = max(1, task_size)
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
        self._queue_client, self._queue_key = self._broker_queue()

    # -- Celery's queue, for back-pressure --

    def _broker_queue(self) -> tuple[redis.Redis | None, str | None]:
        url = self.settings.broker_url or ""
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return None, None
        from .celery_app import TIMER_QUEUE, broker_keyprefix

        return redis.Redis.from_url(url, socket_timeout=10), broker_keyprefix(self.settings) + TIMER_QUEUE

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
            marker = {"redis_run_id": self._run_id, "built_at": datetime.now(UTC).isoformat(), "by": self.name,
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
        """Drop a slice of members whose rows are gone (cancelled deadlines), so the index holds pending timers."""
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
            claimed = self.table.claim([i for i, _ in popped], now, self.name, self.settings.timer_claim_seconds)
        except Exception:
            self.index.put_back(popped)
            raise
        self.stats.dropped += len(popped) - len(claimed)
        from .celery_app import FIRE_TIMERS, TIMER_QUEUE

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
        from .celery_app import DISPATCH_OUTBOX, OUTBOX_QUEUE
        from .outbox import has_due

        if not has_due(self.svc):
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
                 extra={"scheduler": self.name, "index_size": self.index.size(), "queued_tasks": self.queued_tasks(),
                        **vars(s)})

    def run(self, stop: threading.Event) -> None:
        """Cycle until ``stop`` is set; Redis or the database going away is waited out with backoff."""
        failures = 0
        started = False
        while not stop.is_set():
            try:
                if not started:
                    self.start()
                    started = True
                delay = self.step()
                failures = 0
            except Exception as exc:  # Redis, the database or the broker away: wait it out, never exit
                failures += 1
                self.stats.errors += 1
                self._run_id = None  # Redis may come back as a new instance: look again
                delay = min(10.0, 0.25 * 2 ** min(failures, 6))
                expected = isinstance(exc, (redis.RedisError, OperationalError, GridflowError, OSError, KombuError))
                log.log(logging.WARNING if expected else logging.ERROR,
                        "scheduler cycle failed (%s), retrying in %.1fs: %s", type(exc).__name__, delay, exc,
                        exc_info=not expected, extra={"scheduler": self.name})
            if delay:
                stop.wait(delay)


def index_status(settings: Any) -> dict[str, Any]:
    """What an operator (or the API's /metrics) wants to know about the index: size, marker, next due, overdue."""
    client = redis_client(settings)
    try:
        idx = TimerIndex(client, settings)
        nxt = idx.next_due()
        now = time.time()
        return {"size": idx.size(), "marker": idx.marker(), "next_due_in_s": None if nxt is None else nxt - now,
                "overdue": int(client.zcount(idx.key, "-inf", now))}
    finally:
        client.close()


def run_scheduler(settings: Any, **options: Any) -> None:
    """``gridflow scheduler``: blocks until Ctrl-C or SIGTERM. ``options`` go to :class:`Scheduler`."""
    configure_logging(settings, role="scheduler")
    from ..bootstrap import bootstrap
    from .celery_app import make_celery

    app = bootstrap(settings, runner="none", seed=False, create_schema=False)
    client = redis_client(settings)
    celery = make_celery(settings)
    scheduler = Scheduler(settings, app.services, client, celery, **options)
    stop = threading.Event()

    def _stop(signum, _frame) -> None:
        log.info("scheduler stopping (signal %d)", signum, extra={"scheduler": scheduler.name})
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    log.info("scheduler started", extra={"scheduler": scheduler.name, "index": index_key(settings)})
    try:
        scheduler.run(stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        scheduler.close()
        client.close()
        app.close()
        log.info("scheduler stopped", extra={"scheduler": scheduler.name, **vars(scheduler.stats)})
