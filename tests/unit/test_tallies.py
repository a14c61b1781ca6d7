"""Periods split into whole calendar months and edge days: every day falls in exactly one part."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gridflow.engine.tallies import month_of, split_period

DAYS = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))


def _parts_of(day: date, lo, hi) -> int:
    p = split_period(lo, hi)
    n = 0
    if p.whole_months:
        first, after = p.months
        n += (first is None or month_of(day) >= first) and (after is None or month_of(day) < after)
    n += sum((a is None or day >= a) and (b is None or day <= b) for a, b in p.days)
    return n


@given(lo=st.none() | DAYS, hi=st.none() | DAYS, day=DAYS)
def test_every_day_of_a_period_is_read_from_exactly_one_part_and_no_other_day_from_any(lo, hi, day):
    if lo is not None and hi is not None and hi < lo:
        lo, hi = hi, lo
    inside = (lo is None or day >= lo) and (hi is None or day <= hi)
    assert _parts_of(day, lo, hi) == (1 if inside else 0)


def test_a_year_of_whole_months_reads_no_daily_rows():
    p = split_period(date(2025, 12, 1), date(2026, 11, 30))
    assert p.whole_months and p.months == (date(2025, 12, 1), date(2026, 12, 1)) and p.days == ()


def test_a_period_within_one_month_reads_daily_rows_only():
    p = split_period(date(2026, 3, 5), date(2026, 3, 29))
    assert not p.whole_months and p.days == ((date(2026, 3, 5), date(2026, 3, 29)),)
    edge = split_period(date(2026, 2, 20), date(2026, 4, 3))
    assert edge.months == (date(2026, 3, 1), date(2026, 4, 1))
    assert edge.days == ((date(2026, 2, 20), date(2026, 2, 28)), (date(2026, 4, 1), date(2026, 4, 3)))
    assert split_period(date(2026, 2, 1) - timedelta(days=1), None).months == (date(2026, 2, 1), None)
