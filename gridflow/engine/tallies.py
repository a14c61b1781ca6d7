"""Which counters a fact adds to: one rule for the live summary (``unit_day_stats``), its rebuild and the
report (definitions: docs/three-rates.md). Pure: a fact's kind, detail and on_time in, counter names out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Iterable

#: The counters of a unit's figures, in the order they are shown.
RESPONSE_FIELDS = ("receipts", "responded", "responded_on_time", "responded_late", "unanswered_returned",
                   "unanswered_withdrawn", "unanswered_passed_on", "awaiting_response")
RESOLUTION_FIELDS = ("received", "resolved", "merged", "rejected", "closed_other", "returned_unresolved",
                     "passed_on", "withdrawn", "open", "closed")
SATISFACTION_FIELDS = ("rated", "satisfied", "basically_satisfied", "dissatisfied", "rated_by_default",
                       "rating_missing")
COUNTER_FIELDS = ("rework_rounds", "failed_reviews", "returns", "improper_returns", "extensions",
                  "suspensions", "supervision_orders", "key_supervision_orders",
                  "supervision_answered_on_time", "supervision_answered_late", "supervision_overdue",
                  "reminders", "criticism_notices",
                  "breaches", "escalations", "supervised")
FIELDS = RESPONSE_FIELDS + RESOLUTION_FIELDS + SATISFACTION_FIELDS + COUNTER_FIELDS
#: Figures worked out from the others, never stored.
DERIVED = frozenset({"awaiting_response", "open"})
#: The counters stored per unit, area and day: every name :func:`tally` can give.
STORED = tuple(name for name in FIELDS if name not in DERIVED)

#: fact kind -> the counter it adds to, when neither its detail nor its on_time decides
_BY_KIND = {"receipt": "receipts", "received": "received", "rating_default": "rated_by_default",
            "rating_missing": "rating_missing", "rework": "rework_rounds", "review_fail": "failed_reviews",
            "return": "returns", "improper_return": "improper_returns", "extension": "extensions",
            "suspension": "suspensions", "supervision_overdue": "supervision_overdue",
            "reminder": "reminders",
            "criticism_notice": "criticism_notices", "breach": "breaches", "escalation": "escalations",
            "supervised": "supervised"}
_OUTCOMES = {"resolved": "resolved", "merged": "merged", "rejected": "rejected",
             "closed_other": "closed_other", "returned": "returned_unresolved", "passed_on": "passed_on",
             "withdrawn": "withdrawn"}
_UNANSWERED = {"returned": "unanswered_returned", "withdrawn": "unanswered_withdrawn",
               "passed_on": "unanswered_passed_on"}
_RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")


def tally(kind: str, detail: str | None, on_time: bool | None) -> tuple[str, ...]:
    """The counters one fact adds 1 to."""
    if kind == "response":
        return ("responded", "responded_on_time" if on_time else "responded_late")
    if kind == "unanswered":
        return (_UNANSWERED.get(detail or "", "unanswered_withdrawn"),)
    if kind == "outcome":
        name = _OUTCOMES.get(detail or "", "closed_other")
        return (name, "closed") if name in ("resolved", "merged", "rejected", "closed_other") else (name,)
    if kind == "rating":
        return ("rated", detail) if detail in _RATINGS else ("rated",)
    if kind == "supervision_order":
        key = ("key_supervision_orders",) if detail == "key" else ()
        return ("supervision_orders", *key)
    if kind == "supervision_answered":
        return ("supervision_answered_on_time" if on_time else "supervision_answered_late",)
    name = _BY_KIND.get(kind)
    return (name,) if name else ()


def add_up(facts: Iterable[Any], *, monthly: bool = False) -> dict[tuple[date, str | None], dict[str, int]]:
    """What a batch of facts adds to each (local day, unit) — or (month, unit): the summary rows a write
    adds to."""
    out: dict[tuple[date, str | None], dict[str, int]] = {}
    for f in facts:
        names = tally(f.kind, f.detail, f.on_time)
        if not names:
            continue
        counts = out.setdefault((month_of(f.day) if monthly else f.day, f.unit), {})
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return out


def month_of(day: date) -> date:
    """The first day of the day's calendar month (the key of its monthly summary row)."""
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Period:
    """A period of local days split into whole calendar months and the days at its edges.

    ``months`` is the half-open range of month starts [from, to) read from the monthly rows (None: no
    bound on that side; both None and ``whole_months`` False: no month at all); ``days`` the inclusive
    day ranges read from the daily rows (None: no bound)."""

    whole_months: bool
    months: tuple[date | None, date | None]
    days: tuple[tuple[date | None, date | None], ...]


def split_period(lo: date | None, hi: date | None) -> Period:
    """Split [lo, hi] (inclusive, None: unbounded) so that every day falls in exactly one part."""
    first = None if lo is None else (lo if lo.day == 1 else _next_month(lo))
    after = None if hi is None else month_of(hi + timedelta(days=1))  # months wholly on or before hi
    if first is not None and after is not None and first >= after:
        return Period(False, (None, None), ((lo, hi),))
    days = []
    if lo is not None and lo < first:
        days.append((lo, first - timedelta(days=1)))
    if hi is not None and after <= hi:
        days.append((after, hi))
    return Period(True, (first, after), tuple(days))
