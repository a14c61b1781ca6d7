"""Durations as written in definitions, and where they end on the real calendars."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.engine import Duration
from gridflow.engine.calendar import BusinessCalendar
from gridflow.engine.durations import DAYS, HOURS, MINUTES, WORKING_DAYS, WORKING_HOURS, DurationError
from tests.unit.helpers import CALENDARS, at, local

CN = CALENDARS.get("cn")
ALWAYS = CALENDARS.get("24x7")


@pytest.mark.parametrize("text, amount, unit", [
    ("16wh", 16, WORKING_HOURS), ("16 working hours", 16, WORKING_HOURS), ("16工作小时", 16, WORKING_HOURS),
    ("1 working hour", 1, WORKING_HOURS), ("0.5wh", 0.5, WORKING_HOURS),
    ("2wd", 2, WORKING_DAYS), ("2 working days", 2, WORKING_DAYS), ("2个工作日", 2, WORKING_DAYS),
    ("4h", 4, HOURS), ("4 小时", 4, HOURS), ("30m", 30, MINUTES), ("30分钟", 30, MINUTES),
    ("15 min", 15, MINUTES), ("3d", 3, DAYS), ("3天", 3, DAYS), (" 7 days ", 7, DAYS),
])
def test_durations_are_read_in_english_short_forms_and_chinese(text, amount, unit):
    d = Duration.parse(text)
    assert (d.amount, d.unit) == (amount, unit)


@pytest.mark.parametrize("text, problem", [
    ("soon", "cannot parse duration"),
    ("", "cannot parse duration"),
    ("4 fortnights", "cannot parse duration"),
    ("0h", "must be positive"),
    ("1.5wd", "working days must be whole"),
    (4, "has no unit"),
    (True, "must be text"),
    (None, "must be text"),
])
def test_a_duration_that_cannot_be_read_says_why(text, problem):
    with pytest.raises(DurationError, match=problem):
        Duration.parse(text)


@pytest.mark.parametrize("text, shown", [("16 working hours", "16wh"), ("2个工作日", "2wd"),
                                         ("0.5wh", "0.5wh"), ("90 minutes", "90m"), ("3天", "3d")])
def test_a_duration_is_shown_in_its_short_form_which_reads_back_the_same(text, shown):
    d = Duration.parse(text)
    assert str(d) == shown and Duration.parse(shown) == d


def test_working_time_and_calendar_time_are_told_apart():
    assert Duration.parse("4wh").is_working_time and Duration.parse("1wd").is_working_time
    assert not Duration.parse("4h").is_working_time and not Duration.parse("3d").is_working_time
    assert Duration.parse("2h").seconds == 7200 and Duration.parse("1.5wh").seconds == 5400
    assert Duration.parse("2wd").seconds is None  # a working day has no fixed length


def test_working_hours_count_only_office_hours():
    # Friday 16:00 + 4 working hours: 1.5h on Friday, then Monday 08:30 + 2.5h
    assert local(Duration.parse("4wh").due(at(2026, 3, 13, 16, 0), CN)) == at(2026, 3, 16, 11, 0)


def test_working_days_end_at_close_of_business_and_skip_the_day_of_receipt():
    # Wednesday 10:00 + 2 working days: close of business on Friday
    assert local(Duration.parse("2wd").due(at(2026, 3, 11, 10, 0), CN)) == at(2026, 3, 13, 17, 30)
    # Tuesday 2026-09-29 + 2 working days: 9-30 is one, then the National Day week, then Thursday 10-08
    assert local(Duration.parse("2wd").due(at(2026, 9, 29, 9, 0), CN)) == at(2026, 10, 8, 17, 30)


def test_calendar_time_ignores_office_hours_and_holidays():
    start = at(2026, 10, 1, 23, 0)
    assert local(Duration.parse("30m").due(start, ALWAYS)) == at(2026, 10, 1, 23, 30)
    assert local(Duration.parse("3d").due(start, CN)) == at(2026, 10, 4, 23, 0)


def test_a_deadline_span_gives_the_due_time_and_the_working_seconds_it_allows():
    start = at(2026, 3, 9, 10, 0)
    due, allowed = Duration.parse("1wd").span(start, CN)
    assert local(due) == at(2026, 3, 10, 17, 30) and allowed == (6 + 7.5) * 3600
    due, allowed = Duration.parse("4wh").span(start, CN)
    assert local(due) == at(2026, 3, 9, 15, 30) and allowed == 4 * 3600
    due, allowed = Duration.parse("15m").span(start, ALWAYS)
    assert due == start + timedelta(minutes=15) and allowed == 900


STARTS = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2027, 1, 31),
                      timezones=st.just(timezone.utc))


@settings(max_examples=200, deadline=None)
@given(start=STARTS, days=st.integers(min_value=0, max_value=15))
def test_the_one_pass_working_days_span_agrees_with_adding_days_then_measuring(start, days):
    fast = CN.working_days_span(start, days)
    slow = BusinessCalendar.working_days_span(CN, start, days)
    assert fast == slow
    assert fast[0] == CN.add_working_days(start, days)


@settings(max_examples=200, deadline=None)
@given(start=STARTS, hours=st.integers(min_value=1, max_value=200))
def test_a_working_hours_deadline_allows_exactly_its_working_time(start, hours):
    due, allowed = Duration.parse(f"{hours}wh").span(start, CN)
    assert allowed == hours * 3600 == CN.elapsed(start, due)
