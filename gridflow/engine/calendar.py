"""Business calendars: when the clock of a deadline runs, and when it stands still.

A deadline such as "16 working hours" only means something against a calendar
of office hours, weekends, statutory holidays and the adjusted working days
(调休) that the State Council announces each year, e.g. Saturday 2026-10-10 is
worked to make up for the National Day week. ``WorkingCalendar.china()`` takes
both the holidays and the 调休 working weekends from the ``holidays`` package,
year by year as dates are first asked about, and lets a local override file
(``load_overrides``) add what the package does not know yet: a year not yet
announced, a local day off, a make-up working day. Emergencies run on the
``AlwaysCalendar`` ("24x7"), where every second counts.

Estimated years. For a year the State Council has not announced when the
package was released, ``holidays`` still answers, but with an estimate: the
fixed and lunar holidays, moved off weekends by its observed rule, and no 调休
at all (the official arrangements are the ``special_public_holidays`` of
``holidays.countries.china.ChinaStaticHolidays``, year by year). A deadline
computed on such a year may be off by days. ``estimated_years`` names them,
unless an override file declares the year's arrangement (``years:``); the
first use of an estimated year is reported to ``on_estimated`` (the
composition root logs it: the engine itself does no I/O).

Unit calendars (:mod:`gridflow.engine.unit_calendars`) are derived from a base
calendar (``WorkingCalendar.derive``): other hours, other weekend days, hours
per weekday (a Saturday-morning rota), or working through public holidays (a
7x24 desk, ``00:00-24:00``). ``CalendarRegistry.resolve(name, unit)`` answers
the unit's calendar where the unit has one derived from ``name``.

Conventions, fixed here so every caller gets the same answer:

* Instants in, instants out. Inputs must be timezone-aware (any zone); results
  are aware UTC datetimes. Working periods are read in the calendar's own zone.
* Working time is half-open: 08:30 counts, 12:00 and 17:30 do not. So a
  deadline that ends exactly at the close of a period stays there (17:30
  today, not 08:30 tomorrow), while adding a positive amount from outside
  working time starts counting at the next period's start.
* ``add(start, 0)`` adds nothing and returns ``start`` (in UTC), in or out of
  working time.
* N working days, as counted in Chinese administrative practice (e.g. 信访
  "N个工作日内"): the day of receipt does not count, whatever the time of
  receipt; the deadline is close of business (the end of the last working
  period) of the Nth working day after the day of receipt. ``0`` working days
  means close of business of the day of receipt if it is a working day, else
  of the next working day -- for a case received after hours that instant is
  already past. This is deliberately not N x 7.5 working hours: two working
  days from Wednesday 10:00 end on Friday 17:30, sixteen working hours end on
  Friday 11:00 (when no holiday intervenes).

Time is kept internally as integer microseconds since the epoch so that adding
and measuring round-trip exactly, and each local date's working intervals are
computed once and cached, so long spans are summed day by day, not minute by
minute.
"""

from __future__ import annotations

import math
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

__all__ = [
    "AlwaysCalendar",
    "BusinessCalendar",
    "CalendarError",
    "CalendarOverrides",
    "CalendarRegistry",
    "LOCAL_ZONE",
    "WorkingCalendar",
    "END_OF_DAY",
    "china_year_is_estimated",
    "default_registry",
    "load_overrides",
]

UTC = timezone.utc
#: The zone calendars (and people) read local time in, unless told otherwise.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000
DEFAULT_PERIODS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
# A calendar that finds no working day in ten years is misconfigured; fail rather than spin.
_MAX_IDLE_DAYS = 3660
# Bounds memory if a caller sweeps centuries; a real engine touches a few thousand dates.
_DAY_CACHE_LIMIT = 100_000
#: A period that ends at midnight ("24:00"): the only way to write a whole day.
END_OF_DAY = time.max
_ONE_DAY = timedelta(days=1)


class CalendarError(ValueError):
    """A calendar was misused or misconfigured (naive datetime, bad override file, unknown name)."""


# --- instants as integer microseconds ---------------------------------------------------------


def _us(at: datetime, what: str) -> int:
    try:  # the hot path: an aware datetime (naive ones and non-datetimes raise TypeError here)
        return (at - _EPOCH) // _US
    except TypeError:
        pass
    if not isinstance(at, datetime):
        raise CalendarError(f"{what} must be a timezone-aware datetime, got {at!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise CalendarError(f"{what} must be timezone-aware, got naive {at.isoformat()}")
    return (at - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(0, 0, us)  # positional: measurably faster than microseconds=us


def _amount(seconds: float) -> int:
    if type(seconds) is float and 0.0 <= seconds < math.inf:  # the hot path (NaN fails the comparison)
        return round(seconds * _US_PER_S)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise CalendarError(f"an amount of working time must be a number of seconds, got {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise CalendarError(f"an amount of working time must be finite and >= 0, got {seconds!r}")
    return round(seconds * _US_PER_S)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise CalendarError(f"unknown time zone {tz!r}") from exc


def _hhmm(t: time) -> str:
    if t == END_OF_DAY:
        return "24:00"
    return t.strftime("%H:%M:%S" if t.second or t.microsecond else "%H:%M")


# --- the interface ----------------------------------------------------------------------------


class BusinessCalendar(ABC):
    """What the engine needs from a calendar; see the module docstring for the conventions."""

    name: str
    tz: ZoneInfo

    @abstractmethod
    def add(self, start: datetime, seconds: float) -> datetime: ...

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        if isinstance(hours, bool) or not isinstance(hours, (int, float)):
            raise CalendarError(f"working hours must be a number, got {hours!r}")
        return self.add(start, hours * 3600)

    @abstractmethod
    def add_working_days(self, start: datetime, days: int) -> datetime: ...

    @abstractmethod
    def elapsed(self, start: datetime, end: datetime) -> float: ...

    def working_days_span(self, start: datetime, days: int) -> tuple[datetime, float]:
        """``add_working_days(start, days)`` and the working seconds from ``start`` to it, together."""
        due = self.add_working_days(start, days)
        return due, self.elapsed(start, due)

    @abstractmethod
    def is_working_day(self, d: date) -> bool: ...

    @abstractmethod
    def is_working_time(self, at: datetime) -> bool: ...

    @abstractmethod
    def describe(self) -> dict: ...

    def estimated_years(self, start: datetime, end: datetime) -> tuple[int, ...]:
        """Years between ``start`` and ``end`` (local dates, both included) whose days off are estimated."""
        return ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.tz}>"

    def _local_date(self, d: date) -> date:
        """A datetime given where a date is expected means its date in this calendar's zone."""
        if isinstance(d, datetime):
            _us(d, "day")
            return d.astimezone(self.tz).date()
        if not isinstance(d, date):
            raise CalendarError(f"expected a date, got {d!r}")
        return d


def _check_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise CalendarError(f"working days must be a whole number >= 0, got {days!r}")
    return days


class AlwaysCalendar(BusinessCalendar):
    """Every second is working time: emergencies (突发事件) do not wait for Monday."""

    def __init__(self, name: str = "24x7", tz: str | ZoneInfo = LOCAL_ZONE) -> None:
        self.name = name
        self.tz = _zone(tz)

    def add(self, start: datetime, seconds: float) -> datetime:
        return _dt(_us(start, "start") + _amount(seconds))

    def add_working_days(self, start: datetime, days: int) -> datetime:
        return _dt(_us(start, "start")) + timedelta(days=_check_days(days))

    def elapsed(self, start: datetime, end: datetime) -> float:
        return max(0, _us(end, "end") - _us(start, "start")) / _US_PER_S

    def is_working_day(self, d: date) -> bool:
        self._local_date(d)
        return True

    def is_working_time(self, at: datetime) -> bool:
        _us(at, "at")
        return True

    def describe(self) -> dict:
        return {
            "name": self.name, "kind": "24x7", "tz": str(self.tz), "periods": ["00:00-24:00"],
            "weekend": [], "holidays_known": 0, "workdays_known": 0, "years_loaded": [],
            "overrides_source": None, "public_holidays": False, "estimated_years": [],
        }


YearSource = Callable[[int], tuple[frozenset[date], frozenset[date]]]


class WorkingCalendar(BusinessCalendar):
    """Office hours on working days.

    A day is a working day by, in order of precedence: ``workdays`` (forced
    working), ``holidays`` (forced off), the year source's adjusted working days
    and holidays (loaded once per year, on first use), and finally the weekday
    against ``weekend`` (Monday is 0).
    """

    def __init__(
        self,
        name: str,
        tz: str | ZoneInfo = LOCAL_ZONE,
        periods: Iterable[tuple[time, time]] = DEFAULT_PERIODS,
        weekend: Iterable[int] = (5, 6),
        holidays: Iterable[date] = frozenset(),
        workdays: Iterable[date] = frozenset(),
        *,
        year_source: YearSource | None = None,
        source: str | None = None,
        weekly: Mapping[int, Iterable[tuple[time, time]]] | None = None,
        estimated: Callable[[int], bool] | None = None,
        declared_years: Iterable[int] = (),
        on_estimated: Callable[[str, int], None] | None = None,
        label: str | None = None,
    ) -> None:
        self.name = name
        self.label = label
        self.tz = _zone(tz)
        self.periods = _check_periods(periods)
        #: weekday -> its own working periods (a weekend day listed here with periods is worked)
        own = {k: tuple(v) for k, v in (weekly or {}).items()}
        self.weekly = {int(k): (_check_periods(v) if v else ()) for k, v in own.items()}
        if not set(self.weekly) <= set(range(7)):
            raise CalendarError(f"weekday numbers are 0 (Monday) to 6, got {sorted(self.weekly)}")
        self.weekend = frozenset(weekend)
        if not self.weekend <= set(range(7)):
            raise CalendarError("weekend days are weekday numbers 0 (Monday) to 6, "
                                f"got {sorted(self.weekend)}")
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        if clash := self.holidays & self.workdays:
            raise CalendarError(f"dates both holiday and workday: {', '.join(map(str, sorted(clash)))}")
        self.source = source
        self._year_source = year_source
        #: years whose arrangement the override file declares complete: the package is not asked
        self.declared_years = frozenset(declared_years)
        self._estimated = estimated
        #: called once per (calendar, year) the first time an estimated year is used
        self.on_estimated = on_estimated
        self._estimated_used: set[int] = set()
        self._years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}
        self._years_lock = threading.Lock()
        # local date ordinal -> (working intervals as UTC microseconds, their total length)
        self._days: dict[int, tuple[tuple[tuple[int, int], ...], int]] = {}

    @classmethod
    def china(
        cls,
        name: str = "cn",
        overrides: CalendarOverrides | None = None,
        periods: Iterable[tuple[time, time]] = DEFAULT_PERIODS,
        years: Iterable[int] | None = None,
    ) -> WorkingCalendar:
        """Mainland China office hours with statutory holidays and 调休 from the ``holidays`` package.

        ``overrides`` win over the package. ``years`` are loaded now (e.g. to warm
        up or to report counts); every other year is still loaded when first needed.
        """
        ov = overrides if overrides is not None else CalendarOverrides()
        cal = cls(
            name, LOCAL_ZONE, periods, (5, 6), ov.holidays, ov.workdays,
            year_source=_china_year, source=ov.source or None, estimated=china_year_is_estimated,
            declared_years=ov.years,
        )
        for year in years or ():
            cal._year(year)
        return cal

    # -- day table ------------------------------------------------------------------------------

    def _year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        data = self._years.get(year)
        if data is None:
            with self._years_lock:
                data = self._years.get(year)
                if data is None:
                    asked = self._year_source is not None and year not in self.declared_years
                    data = self._year_source(year) if asked else (frozenset(), frozenset())
                    self._years[year] = data
                    if self.is_estimated(year):
                        self._estimated_used.add(year)
                        if self.on_estimated is not None:
                            self.on_estimated(self.name, year)
        return data

    # -- estimated years ------------------------------------------------------------------------

    def is_estimated(self, year: int) -> bool:
        """True when this calendar's days off in ``year`` are the package's estimate (no 调休 known)."""
        if self._year_source is None or self._estimated is None or year in self.declared_years:
            return False
        return self._estimated(year)

    def estimated_years(self, start: datetime, end: datetime) -> tuple[int, ...]:
        first = start.astimezone(self.tz).year
        last = max(first, end.astimezone(self.tz).year)
        return tuple(y for y in range(first, last + 1) if self.is_estimated(y))

    @property
    def estimated_years_used(self) -> tuple[int, ...]:
        """Estimated years this calendar has computed deadlines on so far."""
        return tuple(sorted(self._estimated_used))

    def derive(self, name: str, *, periods: Iterable[tuple[time, time]] | None = None,
               weekend: Iterable[int] | None = None,
               weekly: Mapping[int, Iterable[tuple[time, time]]] | None = None,
               public_holidays: bool = True, label: str | None = None) -> "WorkingCalendar":
        """A calendar like this one with other hours or days (a unit calendar).

        ``weekly`` gives single weekdays their own periods (an empty list: that day is off);
        ``public_holidays=False`` works through statutory holidays and ignores 调休 too: every day
        follows the weekly pattern (a 7x24 desk, a holiday rota).
        """
        keep = public_holidays
        return WorkingCalendar(
            name, self.tz, self.periods if periods is None else periods,
            self.weekend if weekend is None else weekend,
            self.holidays if keep else (), self.workdays if keep else (),
            year_source=self._year_source if keep else None, source=self.source,
            weekly={**self.weekly, **dict(weekly or {})}, estimated=self._estimated if keep else None,
            declared_years=self.declared_years, on_estimated=self.on_estimated, label=label,
        )

    def _periods_of(self, d: date) -> tuple[tuple[time, time], ...]:
        """The day's working periods: none on a day off; normal hours on a forced (调休) working day."""
        if d in self.workdays:
            return self.periods
        if d in self.holidays:
            return ()
        if self._year_source is not None:
            off, on = self._year(d.year)
            if d in on:
                return self.periods
            if d in off:
                return ()
        own = self.weekly.get(d.weekday())
        if own is not None:
            return own
        return () if d.weekday() in self.weekend else self.periods

    def _day(self, n: int) -> tuple[tuple[tuple[int, int], ...], int]:
        entry = self._days.get(n)
        if entry is None:
            d = date.fromordinal(n)
            periods = self._periods_of(d)
            if periods:
                ivs = tuple(
                    (_us(datetime.combine(d, a, self.tz), "period"),
                     _us(datetime.combine(d + _ONE_DAY, time(0), self.tz) if b == END_OF_DAY
                         else datetime.combine(d, b, self.tz), "period"))
                    for a, b in periods
                )
                entry = (ivs, sum(b - a for a, b in ivs))
            else:
                entry = ((), 0)
            if len(self._days) >= _DAY_CACHE_LIMIT:
                self._days.clear()
            self._days[n] = entry
        return entry

    def _ordinal(self, at: datetime) -> int:
        return at.astimezone(self.tz).toordinal()

    # -- the interface --------------------------------------------------------------------------

    def add(self, start: datetime, seconds: float) -> datetime:
        # _us() and _amount() inlined for the common case: this runs several times per decision.
        try:
            t = (start - _EPOCH) // _US
        except TypeError:
            t = _us(start, "start")
        if type(seconds) is float and 0.0 <= seconds < math.inf:
            left = round(seconds * _US_PER_S)
        else:
            left = _amount(seconds)
        if left == 0:
            return _dt(t)
        n = start.astimezone(self.tz).toordinal()
        cache = self._days
        for a, b in (cache.get(n) or self._day(n))[0]:
            if t < b:
                s = a if a > t else t
                if left <= b - s:
                    return _dt(s + left)
                left -= b - s
        idle = 0
        while True:
            n += 1
            ivs, length = cache.get(n) or self._day(n)
            if left <= length:
                break
            left -= length
            idle = idle + 1 if not length else 0
            if idle > _MAX_IDLE_DAYS:
                raise CalendarError(f"calendar {self.name!r} has no working day in {_MAX_IDLE_DAYS} days")
        for a, b in ivs:
            if left <= b - a:
                return _dt(a + left)
            left -= b - a
        raise AssertionError("unreachable: the day's length covered the remaining time")

    def add_working_days(self, start: datetime, days: int) -> datetime:
        return self.working_days_span(start, days)[0]

    def working_days_span(self, start: datetime, days: int) -> tuple[datetime, float]:
        # One pass where the default takes two: every deadline counted in working days starts here.
        t = _us(start, "start")
        days = _check_days(days)
        n = start.astimezone(self.tz).toordinal()
        cache = self._days
        entry = cache.get(n) or self._day(n)
        total = 0
        for a, b in entry[0]:
            if b > t:
                total += b - (a if a > t else t)
        if not (days == 0 and entry[1]):
            left, idle = days or 1, 0  # 0 days on a day off: the next working day closes it
            while left:
                n += 1
                entry = cache.get(n) or self._day(n)
                if entry[1]:
                    total += entry[1]
                    left -= 1
                    idle = 0
                else:
                    idle += 1
                    if idle > _MAX_IDLE_DAYS:
                        raise CalendarError(f"calendar {self.name!r} has no working day in "
                                            f"{_MAX_IDLE_DAYS} days")
        return _dt(entry[0][-1][1]), total / _US_PER_S

    def elapsed(self, start: datetime, end: datetime) -> float:
        try:  # _us() inlined for the common case
            s, e = (start - _EPOCH) // _US, (end - _EPOCH) // _US
        except TypeError:
            s, e = _us(start, "start"), _us(end, "end")
        if e <= s:
            return 0.0
        tz = self.tz
        n0, n1 = start.astimezone(tz).toordinal(), end.astimezone(tz).toordinal()
        days = self._days
        total = 0
        for a, b in (days.get(n0) or self._day(n0))[0]:  # _overlap(n0, s, e), inlined
            lo, hi = (a if a > s else s), (b if b < e else e)
            if hi > lo:
                total += hi - lo
        if n1 != n0:
            total += self._overlap(n1, s, e)
            for n in range(n0 + 1, n1):
                entry = days.get(n) or self._day(n)
                total += entry[1]
        return total / _US_PER_S

    def _overlap(self, n: int, s: int, e: int) -> int:
        total = 0
        for a, b in (self._days.get(n) or self._day(n))[0]:
            lo, hi = (a if a > s else s), (b if b < e else e)
            if hi > lo:
                total += hi - lo
        return total

    def is_working_day(self, d: date) -> bool:
        return bool(self._day(self._local_date(d).toordinal())[1])

    def is_working_time(self, at: datetime) -> bool:
        t = _us(at, "at")
        return any(a <= t < b for a, b in self._day(self._ordinal(at))[0])

    def describe(self) -> dict:
        weekly = {str(k): [f"{_hhmm(a)}-{_hhmm(b)}" for a, b in v] for k, v in sorted(self.weekly.items())}
        off, on = set(self.holidays), set(self.workdays)
        for year_off, year_on in list(self._years.values()):
            off |= year_off
            on |= year_on
        return {
            "name": self.name,
            "kind": "working",
            "tz": str(self.tz),
            "periods": [f"{_hhmm(a)}-{_hhmm(b)}" for a, b in self.periods],
            "weekend": sorted(self.weekend),
            "holidays_known": len(off - self.workdays),
            "workdays_known": len(on - self.holidays),
            "years_loaded": sorted(self._years),
            "overrides_source": self.source,
            **({"label": self.label} if self.label else {}),
            **({"weekly": weekly} if weekly else {}),
            "public_holidays": self._year_source is not None or bool(self.holidays or self.workdays),
            "estimated_years": sorted(y for y in self._years if self.is_estimated(y)),
        }


def _check_periods(periods: Iterable[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    checked = tuple((a, b) for a, b in periods)
    if not checked:
        raise CalendarError("a working calendar needs at least one working period")
    previous_end = None
    for a, b in checked:
        if not (isinstance(a, time) and isinstance(b, time)) or a.tzinfo or b.tzinfo:
            raise CalendarError(f"a working period is a pair of naive local times, got {(a, b)!r}")
        if not a < b:
            raise CalendarError(f"working period {_hhmm(a)}-{_hhmm(b)} ends before it starts")
        if previous_end is not None and a < previous_end:
            raise CalendarError("working periods must be in order and must not overlap")
        previous_end = b
    return checked


@lru_cache(maxsize=None)
def _china_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """One year of Chinese (holidays, adjusted working weekends) from the ``holidays`` package.

    The package lists 调休 working weekends in ``weekend_workdays`` (including
    cross-year ones such as a late-December Saturday worked for New Year, which
    it records whatever year is asked for). A year the State Council has not
    announced yet gets the package's estimate and no 调休: use an override file.
    """
    import holidays as holidays_pkg  # deferred: only calendars that need it pay its import

    cn = holidays_pkg.country_holidays("CN", years=year)
    off = frozenset(d for d in cn if d.year == year)
    on = frozenset(d for d in getattr(cn, "weekend_workdays", ()) if d.year == year)
    return off, on


@lru_cache(maxsize=1)
def china_official_years() -> frozenset[int]:
    """Years whose official State Council arrangement (放假调休安排) the ``holidays`` package carries."""
    from holidays.countries.china import ChinaStaticHolidays

    return frozenset(getattr(ChinaStaticHolidays, "special_public_holidays", {}))


def china_year_is_estimated(year: int) -> bool:
    """The package estimates every year it has no official arrangement for (no 调休, observed rule)."""
    return year not in china_official_years()


# --- overrides --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarOverrides:
    """Local announcements laid over the package: extra days off and forced working days."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    source: str = ""
    #: years whose whole arrangement the file gives: for them the package is not consulted
    years: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        object.__setattr__(self, "years", frozenset(self.years))
        if clash := self.holidays & self.workdays:
            raise CalendarError(f"dates both holiday and workday: {', '.join(map(str, sorted(clash)))}")


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LISTS = ("holidays", "workdays")
_KEYS = ("years", *_LISTS)


def load_overrides(path: str | os.PathLike[str]) -> CalendarOverrides:
    """Read an override file; any mistake in it is a ``CalendarError`` reading ``path:LINE: message``.

    Keys: ``holidays`` and ``workdays`` (dates), and ``years``: the years whose whole arrangement
    the file gives (a State Council notice newer than the package), so that they are not estimated.
    An unreadable file raises ``OSError`` as usual; an empty file means no overrides.
    """
    where = os.fspath(path)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()

    def fail(node_or_line, message: str):
        line = node_or_line if isinstance(node_or_line, int) else node_or_line.start_mark.line + 1
        raise CalendarError(f"{where}:{line}: {message}")

    root = compose_yaml(text, fail)
    if root is None:
        return CalendarOverrides(source=where)
    if not isinstance(root, yaml.MappingNode):
        fail(root, "expected a mapping with the keys years, holidays and workdays")

    found: dict[str, dict[date, int]] = {key: {} for key in _LISTS}
    years: dict[int, int] = {}
    seen: set[str] = set()
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in _KEYS:
            fail(key_node, f"unknown key {key!r} (expected: {', '.join(_KEYS)})")
        if key in seen:
            fail(key_node, f"key {key!r} given twice")
        seen.add(key)
        if isinstance(value_node, yaml.ScalarNode) and value_node.tag.endswith(":null"):
            continue
        if not isinstance(value_node, yaml.SequenceNode):
            fail(value_node, f"{key} must be a list of {'years' if key == 'years' else 'dates'}")
        for item in value_node.value:
            if key == "years":
                years.setdefault(_override_year(item, fail), item.start_mark.line + 1)
            else:
                found[key].setdefault(_override_date(item, fail), item.start_mark.line + 1)

    for day, line in found["workdays"].items():
        if day in found["holidays"]:
            fail(line, f"{day} is listed as a workday and also as a holiday (line {found['holidays'][day]})")
    for year, line in years.items():
        if not any(day.year == year for day in found["holidays"]):
            fail(line, f"year {year} is declared here but no holiday of {year} is listed: give the whole "
                       "arrangement (every day off) or leave the year out")
    return CalendarOverrides(frozenset(found["holidays"]), frozenset(found["workdays"]), where,
                             frozenset(years))


def compose_yaml(text: str, fail):
    """The YAML node tree of ``text`` (line numbers kept), or ``fail(line, message)``."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        fail(mark.line + 1 if mark else 1, f"not valid YAML: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        fail(1, f"not valid YAML: {exc}")


def _override_year(node, fail) -> int:
    text = node.value.strip() if isinstance(node, yaml.ScalarNode) else ""
    if not re.fullmatch(r"\d{4}", text) or not 1950 <= int(text) <= 2200:
        fail(node, f"{text or 'a ' + node.id!r} is not a year (expected e.g. 2027)")
    return int(text)


def _override_date(node, fail) -> date:
    if isinstance(node, yaml.MappingNode):
        fields = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in ("date", "name"):
                fail(key_node, f"unknown key {key!r} in a date entry (expected: date, name)")
            fields[key] = value_node
        if "date" not in fields:
            fail(node, "a date entry needs a 'date'")
        node = fields["date"]
    if not isinstance(node, yaml.ScalarNode) or not _DATE.match(node.value.strip()):
        shown = node.value if isinstance(node, yaml.ScalarNode) else "a " + node.id
        fail(node, f"{shown!r} is not a date (expected YYYY-MM-DD)")
    try:
        return date.fromisoformat(node.value.strip())
    except ValueError:
        fail(node, f"{node.value!r} is not a valid date")


# --- registry ---------------------------------------------------------------------------------


class CalendarRegistry:
    """Calendars by the name workflow definitions use; registering a name again replaces it."""

    def __init__(self, calendars: Iterable[BusinessCalendar] = ()) -> None:
        self._by_name: dict[str, BusinessCalendar] = {}
        self._by_unit: dict[tuple[str, str], str] = {}  # (base calendar, unit code) -> unit calendar
        for calendar in calendars:
            self.register(calendar)

    def assign(self, base: str, unit: str, calendar: str) -> None:
        """Deadlines that ask for ``base`` and are held by ``unit`` run on ``calendar`` instead."""
        self.get(base)
        self.get(calendar)
        self._by_unit[(base, unit)] = calendar

    def resolve(self, name: str, unit: str | None) -> BusinessCalendar:
        """The calendar a deadline asking for ``name`` runs on when ``unit`` holds the case."""
        if unit is not None and self._by_unit:
            own = self._by_unit.get((name, unit))
            if own is not None:
                return self._by_name[own]
        return self.get(name)

    def assignments(self) -> dict[str, dict[str, str]]:
        """unit code -> {base calendar: unit calendar}."""
        out: dict[str, dict[str, str]] = {}
        for (base, unit), cal in sorted(self._by_unit.items()):
            out.setdefault(unit, {})[base] = cal
        return out

    def calendars(self) -> list[BusinessCalendar]:
        return [self._by_name[n] for n in self.names()]

    def estimated_years_used(self) -> list[int]:
        """Estimated years any calendar here has computed deadlines on so far."""
        return sorted({y for c in self._by_name.values() for y in getattr(c, "estimated_years_used", ())})

    def estimated_years(self, start: datetime, end: datetime) -> list[int]:
        """Years from ``start`` to ``end`` that some calendar here only has an estimate for."""
        return sorted({y for c in self._by_name.values() for y in c.estimated_years(start, end)})

    def register(self, calendar: BusinessCalendar) -> BusinessCalendar:
        self._by_name[calendar.name] = calendar
        return calendar

    def get(self, name: str) -> BusinessCalendar:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise CalendarError(f"unknown calendar {name!r}; known calendars: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)


def default_registry(overrides: CalendarOverrides | None = None) -> CalendarRegistry:
    """A fresh registry with "cn" and "24x7"; keep it, since each calendar caches its day table."""
    return CalendarRegistry([WorkingCalendar.china("cn", overrides), AlwaysCalendar("24x7")])
