"""What every element parser of the loader shares: the problem collector and the small value checks.

A parser never stops at a problem: it records it with the element's path (which the collector turns
into the line the element starts on) and carries on with a harmless fallback, so one pass reports
everything that is wrong with a definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from .definition import Label
from .durations import Duration, DurationError
from .errors import Problem

Path_ = tuple[Any, ...]
#: A category limit's name, as a catalogue entry defines it and a timer's ``category_limit`` reads it.
LIMIT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Collector:
    def __init__(self, source: str, lines: Mapping[Path_, int]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []

    def line(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def add(self, path: Path_, element: str, message: str) -> None:
        self.problems.append(Problem(message, element, self.source, self.line(path)))


@dataclass(frozen=True, slots=True)
class Scope:
    """What the element parsers of one definition check names against."""

    c: Collector
    guards: Any  # a GuardRegistry
    calendar_names: frozenset[str]
    default_calendar: Any
    roles: frozenset[str]  # the workflow's declared roles and the system
    state_names: frozenset[str]


def label(c: Collector, raw: Any, path: Path_, element: str, fallback: str) -> Label:
    if raw is None:
        return Label(fallback, fallback)
    if isinstance(raw, str):
        return Label(raw, raw)
    if isinstance(raw, dict) and set(raw) <= {"zh", "en"}:
        zh, en = raw.get("zh"), raw.get("en")
        return Label(str(zh or en or fallback), str(en or zh or fallback))
    c.add(path, element, "label must be text or a mapping with 'zh' and 'en'")
    return Label(fallback, fallback)


def names(c: Collector, raw: Any, path: Path_, element: str, what: str) -> tuple[str, ...]:
    """A name or a list of names."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return tuple(raw)
    c.add(path, element, f"{what} must be a name or a list of names")
    return ()


def item(raw: dict, key: str, i: int, path: Path_) -> Path_:
    """The path of the i-th name under ``key``: the item itself in a list, else the key."""
    return path + (key, i) if isinstance(raw.get(key), list) else path + (key,)


def unknown_keys(c: Collector, raw: dict, allowed: set[str], path: Path_, element: str) -> None:
    for key in raw:
        if key not in allowed:
            c.add(path + (key,), element, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")


def duration(c: Collector, raw: Any, path: Path_, element: str) -> Duration | None:
    try:
        return Duration.parse(raw)
    except DurationError as exc:
        c.add(path, element, str(exc))
        return None


def known(names_: frozenset[str] | set[str]) -> str:
    return ", ".join(sorted(names_))
