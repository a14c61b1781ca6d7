"""The Redis index of pending timers: one sorted set (member = timer id, score = due time) and its marker.

The database holds the truth — a timer exists because its row exists — and Redis is
an *index* of it that the scheduler (:mod:`gridflow.processes.celery_runner`) keeps,
pops due timers from, and rebuilds when Redis lost it. The marker key, written when a
build finished, carries Redis's ``run_id``: gone after FLUSHDB or eviction, stale
after a restart.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable, Sequence

import redis

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
        """Remove and return up to ``limit`` members due by ``now``, earliest first; atomic."""
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
