"""Unit calendars declared in YAML: a city gives its units other hours without writing code.

A utility's 7x24 desk, a department that works Saturday mornings, a street office with extended
hours (延时服务): each is a named calendar derived from a base one (``cn``), listed with the units
that use it. A deadline that asks for the base calendar runs on the unit's calendar when that unit
holds the case as the deadline starts (``CalendarRegistry.resolve``), and the deadline keeps the
resolved name, so its later firings and explanations use the same calendar. The file::

    calendars:
      water-7x24:                      # a name: lowercase letters, digits, - and _
        label: 供水抢修 7×24 值守
        base: cn                       # the calendar it is derived from (and replaces for its units)
        hours: ["00:00-24:00"]         # working periods of a normal working day (24:00 = midnight)
        weekend: []                    # weekday names or numbers (0 = Monday) that are days off
        public_holidays: worked        # observed (default) or worked: statutory days off and 调休 ignored
        units: [370602W01]
      civil-saturday-am:
        base: cn
        days:                          # weekdays with hours of their own ([] = that day is off)
          saturday: ["08:30-12:00"]
        units: [370602D05]

Every mistake is a ``CalendarError`` reading ``path:LINE: message``. The units are not checked
against the unit directory here (the engine knows none); the composition root warns about codes
it does not know.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import time

import yaml

from .calendar import END_OF_DAY, CalendarError, CalendarRegistry, WorkingCalendar, compose_yaml

__all__ = ["UnitCalendar", "install_unit_calendars", "load_unit_calendars"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_KEYS = ("label", "base", "hours", "weekend", "days", "public_holidays", "units")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class UnitCalendar:
    """One declared calendar: how it differs from its base, and who uses it."""

    name: str
    base: str
    units: tuple[str, ...]
    label: str | None = None
    hours: tuple[tuple[time, time], ...] | None = None
    weekend: tuple[int, ...] | None = None
    days: tuple[tuple[int, tuple[tuple[time, time], ...]], ...] = ()
    public_holidays: bool = True
    line: int = 0


class _File:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, node_or_line, message: str):
        line = node_or_line if isinstance(node_or_line, int) else node_or_line.start_mark.line + 1
        raise CalendarError(f"{self.where}:{line}: {message}")

    def mapping(self, node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        out, seen = [], set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, f"a key of {what} must be a name")
            if key_node.value in seen:
                self.fail(key_node, f"key {key_node.value!r} given twice in {what}")
            seen.add(key_node.value)
            out.append((key_node.value, key_node, value_node))
        return out

    def scalars(self, node, what: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} must be a list")
        out = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode) or item.value.strip() == "":
                self.fail(item, f"an entry of {what} must be a plain value")
            out.append((item.value.strip(), item))
        return out

    def periods(self, node, what: str) -> tuple[tuple[time, time], ...]:
        out = []
        for text, item in self.scalars(node, what):
            m = _PERIOD.match(text)
            if not m:
                self.fail(item, f"{text!r} is not a working period (expected HH:MM-HH:MM, e.g. 08:30-12:00)")
            h1, m1, h2, m2 = map(int, m.groups())
            if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
                self.fail(item, f"{text!r} is not a time of day (00:00 to 24:00)")
            end = END_OF_DAY if h2 == 24 else time(h2, m2)
            start = time(h1, m1)
            if not start < end:
                self.fail(item, f"working period {text!r} ends before it starts")
            if out and start < out[-1][1]:
                self.fail(item, f"working period {text!r} overlaps or precedes the one before it")
            out.append((start, end))
        return tuple(out)

    def weekday(self, text: str, node) -> int:
        if text.isdigit() and int(text) < 7:
            return int(text)
        if text.lower() in WEEKDAYS:
            return WEEKDAYS.index(text.lower())
        self.fail(node, f"{text!r} is not a weekday (monday..sunday, or 0..6 with 0 = Monday)")


def load_unit_calendars(path: str | os.PathLike[str], known: CalendarRegistry) -> list[UnitCalendar]:
    """Read and check a unit calendar file against the calendars already in ``known``."""
    f = _File(os.fspath(path))
    with open(path, encoding="utf-8") as fh:
        root = compose_yaml(fh.read(), f.fail)
    if root is None:
        return []
    top = f.mapping(root, "the file")
    for key, key_node, _ in top:
        if key != "calendars":
            f.fail(key_node, f"unknown key {key!r} (expected: calendars)")
    if not top or (isinstance(top[0][2], yaml.ScalarNode) and top[0][2].tag.endswith(":null")):
        return []
    out: list[UnitCalendar] = []
    taken: dict[tuple[str, str], tuple[str, int]] = {}
    for name, key_node, body in f.mapping(top[0][2], "calendars"):
        cal = _one(f, name, key_node, body, known)
        for unit, line in zip(cal.units, _unit_lines(body)):
            if (cal.base, unit) in taken:
                other, other_line = taken[(cal.base, unit)]
                f.fail(line, f"unit {unit} already uses {other!r} (line {other_line}) in place of "
                             f"{cal.base!r}; a unit has one calendar per base")
            taken[(cal.base, unit)] = (name, line)
        out.append(cal)
    return out


def _unit_lines(body) -> list[int]:
    for key_node, value_node in body.value:
        if key_node.value == "units":
            return [item.start_mark.line + 1 for item in value_node.value]
    return []


def _one(f: _File, name: str, key_node, body, known: CalendarRegistry) -> UnitCalendar:
    if not _NAME.match(name):
        f.fail(key_node, f"calendar name {name!r}: use lowercase letters, digits, '-' and '_'")
    if name in known:
        f.fail(key_node, f"calendar name {name!r} is taken (known: {', '.join(known.names())})")
    fields = {}
    for key, kn, value in f.mapping(body, f"calendar {name!r}"):
        if key not in _KEYS:
            f.fail(kn, f"unknown key {key!r} in calendar {name!r} (expected: {', '.join(_KEYS)})")
        fields[key] = value
    if "base" not in fields:
        f.fail(key_node, f"calendar {name!r} needs a 'base' (e.g. base: cn)")
    base = fields["base"].value if isinstance(fields["base"], yaml.ScalarNode) else None
    if base not in known or not isinstance(known.get(base), WorkingCalendar):
        working = [n for n in known.names() if isinstance(known.get(n), WorkingCalendar)]
        f.fail(fields["base"], f"base {base!r} is not a working calendar (known: {', '.join(working)})")
    if "units" not in fields:
        f.fail(key_node, f"calendar {name!r} needs 'units' (the unit codes that use it)")
    units = [text for text, _ in f.scalars(fields["units"], "units")]
    holidays = fields.get("public_holidays")
    if holidays is not None and (not isinstance(holidays, yaml.ScalarNode)
                                 or holidays.value not in ("observed", "worked")):
        f.fail(holidays, "public_holidays is 'observed' (the default) or 'worked'")
    days = []
    for day, day_node, periods in f.mapping(fields["days"], "days") if "days" in fields else ():
        days.append((f.weekday(day, day_node), f.periods(periods, f"days.{day}")))
    weekend = None
    if "weekend" in fields:
        weekend = tuple(f.weekday(text, node) for text, node in f.scalars(fields["weekend"], "weekend"))
    label = fields.get("label")
    if "hours" in fields and not f.periods(fields["hours"], "hours"):
        f.fail(fields["hours"], "hours needs at least one working period")
    return UnitCalendar(
        name=name, base=base, units=tuple(units),
        label=label.value if isinstance(label, yaml.ScalarNode) else None,
        hours=f.periods(fields["hours"], "hours") if "hours" in fields else None,
        weekend=weekend, days=tuple(days),
        public_holidays=holidays is None or holidays.value == "observed", line=key_node.start_mark.line + 1,
    )


def install_unit_calendars(registry: CalendarRegistry, calendars: list[UnitCalendar]) -> None:
    """Register each calendar, derived from its base, and assign it to its units."""
    for uc in calendars:
        base = registry.get(uc.base)
        assert isinstance(base, WorkingCalendar)  # load_unit_calendars checked it
        if uc.hours is not None and not uc.hours:
            raise CalendarError(f"calendar {uc.name!r}: hours may not be empty")
        registry.register(base.derive(uc.name, periods=uc.hours, weekend=uc.weekend, weekly=dict(uc.days),
                                      public_holidays=uc.public_holidays, label=uc.label))
        for unit in uc.units:
            registry.assign(uc.base, unit, uc.name)
