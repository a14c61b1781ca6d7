"""Possible duplicates of a new report (重复件): the open cases it may repeat, best first, each with why.

Pure: the service hands in the new report and the open cases near it in place and time (or from the same
caller's phone); this module measures and ranks. Nothing is merged here: triage decides, with the
candidates shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class DuplicateRules:
    """Within ``radius_m`` of the new report's point and ``window`` before it, in the same category; or
    from the same caller's phone within ``phone_window``. A zero radius or window turns a rule off."""

    radius_m: float = 100.0
    window: timedelta = timedelta(hours=72)
    phone_window: timedelta = timedelta(days=7)
    limit: int = 5

    @property
    def by_place(self) -> bool:
        return self.radius_m > 0 and self.window > timedelta(0)

    @property
    def by_phone(self) -> bool:
        return self.phone_window > timedelta(0)


@dataclass(frozen=True, slots=True)
class Report:
    category: str
    at: datetime
    lat: float | None = None
    lon: float | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class OpenCase:
    number: str
    category: str
    opened_at: datetime
    lat: float | None = None
    lon: float | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    number: str
    score: float  # 0..1, higher is likelier
    reason: str  # what matched, in Chinese with the figures (no personal data)
    distance_m: float | None
    minutes_before: int
    same_phone: bool

    def as_dict(self) -> dict:
        return {"number": self.number, "score": round(self.score, 3), "reason": self.reason,
                "distance_m": None if self.distance_m is None else round(self.distance_m),
                "minutes_before": self.minutes_before, "same_phone": self.same_phone}


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) containing every point within ``radius_m`` (for an index)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(0.01, math.cos(math.radians(lat)))))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def _ago(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} 分钟前"
    if minutes < 48 * 60:
        return f"{minutes // 60} 小时前"
    return f"{minutes // (24 * 60)} 天前"


def rank(new: Report, cases: Iterable[OpenCase], rules: DuplicateRules) -> list[Candidate]:
    """The open cases the new report may repeat, best first (at most ``rules.limit``)."""
    found: dict[str, Candidate] = {}
    for c in cases:
        gap = new.at - c.opened_at
        if gap < timedelta(0):
            continue
        minutes = int(gap.total_seconds() // 60)
        same_phone = bool(rules.by_phone and new.phone and c.phone == new.phone and gap <= rules.phone_window)
        near = None
        if (rules.by_place and new.category and c.category == new.category and gap <= rules.window
                and None not in (new.lat, new.lon, c.lat, c.lon)):
            d = distance_m(new.lat, new.lon, c.lat, c.lon)  # type: ignore[arg-type]
            near = d if d <= rules.radius_m else None
        if near is None and not same_phone:
            continue
        score, reasons = 0.0, []
        if near is not None:
            score += 0.6 * (1 - near / rules.radius_m) + 0.4 * (1 - gap / rules.window)
            reasons.append(f"同类别，相距 {round(near)} 米，{_ago(minutes)}上报")
        if same_phone:
            score = max(score, 0.5) + 0.3 * (1 - gap / rules.phone_window)
            other = "" if c.category == new.category else "（类别不同）"
            reasons.append(f"同一来电号码，{_ago(minutes)}上报{other}")
        found[c.number] = Candidate(c.number, min(1.0, score), "；".join(reasons), near, minutes, same_phone)
    return sorted(found.values(), key=lambda x: (-x.score, x.minutes_before, x.number))[:rules.limit]
