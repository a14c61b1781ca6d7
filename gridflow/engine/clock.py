"""Time is a port: every time-dependent path asks a Clock, never the wall clock.

``SystemClock`` for production, ``ManualClock`` for tests (advance instead of
sleeping) and ``ScaledClock`` for demos (e.g. one simulated hour per second).
All clocks return timezone-aware UTC datetimes.

A scaled clock restarted from real time would jump back by uptime × (factor − 1):
``ClockEpoch`` is the origin it keeps (stored by the caller), so every start
continues the same simulated timeline.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
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

    @classmethod
    def continuing(cls, epoch: "ClockEpoch", real_now: datetime, *,
                   monotonic=time.monotonic) -> "ScaledClock":
        """The clock of ``epoch``'s timeline from ``real_now`` on; never before the epoch's simulated start
        (should the wall clock have been set back)."""
        return cls(max(epoch.simulated_at(real_now), epoch.simulated), epoch.factor, monotonic=monotonic)


@dataclass(frozen=True)
class ClockEpoch:
    """A scaled timeline: at the real instant ``real`` simulated time was ``simulated``, and it runs
    ``factor`` times faster than real time from there."""

    real: datetime
    simulated: datetime
    factor: float

    def __post_init__(self) -> None:
        ensure_aware(self.real, "ClockEpoch real")
        ensure_aware(self.simulated, "ClockEpoch simulated")
        if self.factor <= 0:
            raise ValueError("factor must be positive")

    @classmethod
    def starting(cls, real_now: datetime, factor: float) -> "ClockEpoch":
        """A new timeline: simulated time starts at the real time."""
        return cls(real_now, real_now, factor)

    def simulated_at(self, real: datetime) -> datetime:
        return self.simulated + (real - self.real) * self.factor

    def rebased(self, real_now: datetime, factor: float) -> "ClockEpoch":
        """The same timeline from ``real_now`` on at another factor: simulated time goes on from where
        this epoch has it now, never back."""
        return ClockEpoch(real_now, max(self.simulated_at(real_now), self.simulated), factor)

    def to_json(self) -> dict[str, object]:
        return {"real": self.real.isoformat(), "simulated": self.simulated.isoformat(), "factor": self.factor}

    @classmethod
    def from_json(cls, data: dict) -> "ClockEpoch":
        return cls(datetime.fromisoformat(data["real"]), datetime.fromisoformat(data["simulated"]),
                   float(data["factor"]))


_ISO_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?!$)(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$")


def parse_iso_duration(text: str) -> timedelta:
    """An ISO 8601 duration (``PT4H``, ``P1DT2H30M``, ``P2W``, ``-PT1H``) as a ``timedelta``.

    Years and months have no fixed length and are refused; so is anything that is not a duration.
    Raises ``ValueError`` with a message for people.
    """
    m = _ISO_DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration (e.g. PT4H, P1D, P1DT2H30M)")
    if m["years"] or m["months"]:
        raise ValueError(f"{text!r}: years and months have no fixed length; give weeks, days or hours")
    units = ("weeks", "days", "hours", "minutes", "seconds")
    parts = {k: float(m[k].replace(",", ".")) for k in units if m[k]}
    try:
        delta = timedelta(**parts)
    except (OverflowError, ValueError):
        raise ValueError(f"{text!r} is too long a duration") from None
    return -delta if m["sign"] == "-" else delta
