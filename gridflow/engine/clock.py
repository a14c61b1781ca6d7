"""Time is a port: every time-dependent path asks a Clock, never the wall clock.

``SystemClock`` for production, ``ManualClock`` for tests (advance instead of
sleeping) and ``ScaledClock`` for demos (e.g. one simulated hour per second).
All clocks return timezone-aware UTC datetimes.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

UTC = timezone.utc


def ensure_aware(at: datetime, what: str = "datetime") -> datetime:
    if at.tzinfo is UTC:  # the common case, and on every decision's path
        return at
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; thread-safe."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start, "ManualClock start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a clock never runs backwards")
        with self._lock:
            self._now += step
            return self._now

    def set(self, at: datetime) -> datetime:
        at = ensure_aware(at, "ManualClock.set")
        with self._lock:
            if at < self._now:
                raise ValueError("a clock never runs backwards")
            self._now = at
            return self._now


class ScaledClock:
    """Simulated time that runs ``factor`` times faster than real time from ``start``."""

    def __init__(self, start: datetime, factor: float, *, monotonic=time.monotonic) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self._start = ensure_aware(start, "ScaledClock start")
        self._factor = factor
        self._monotonic = monotonic
        self._t0 = monotonic()

    @property
    def factor(self) -> float:
        return self._factor

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(self._monotonic() - self._t0) * self._factor)
