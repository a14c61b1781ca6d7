"""Business calendar: pinned real dates around the 2026 National Day week, plus properties."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.engine.calendar import (
    AlwaysCalendar,
    BusinessCalendar,
    CalendarError,
    CalendarOverrides,
    CalendarRegistry,
    WorkingCalendar,
    default_registry,
    load_overrides,
)

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
HOUR = 3600
SAMPLE = Path(__file__).resolve().parents[2] / "gridflow" / "workflows" / "calendars" / "cn_overrides.yaml"


def at(y, mo, d, h=0, mi=0, s=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


def local(dt: datetime) -> datetime:
    assert dt.utcoffset() == timedelta(0), "results are UTC"
    return dt.astimezone(SH)


@pytest.fixture(scope="module")
def cn() -> WorkingCalendar:
    return WorkingCalendar.china()


# --- days ------------------------------------------------------------------------------------


def test_national_day_2026_is_off_and_makeup_saturday_works(cn):
    for day in range(1, 8):
        assert not cn.is_working_day(date(2026, 10, day)), f"2026-10-0{day} is a holiday"
    assert cn.is_working_day(date(2026, 9, 30))
    assert cn.is_working_day(date(2026, 10, 8))
    assert cn.is_working_day(date(2026, 10, 10)), "Saturday 2026-10-10 is a 调休 working day"
    assert not cn.is_working_day(date(2026, 10, 11)), "an ordinary Sunday"
    assert cn.is_working_day(date(2026, 9, 20)), "Sunday 2026-09-20 is a 调休 working day"


def test_a_datetime_given_as_day_is_read_in_the_calendar_zone(cn):
    # 2026-10-09 17:00 UTC is already Saturday 2026-10-10 in Shanghai.
    assert cn.is_working_day(datetime(2026, 10, 9, 17, tzinfo=UTC))
    assert not cn.is_working_day(datetime(2026, 9, 30, 17, tzinfo=UTC))  # = 10-01 01:00 local


def test_years_are_loaded_lazily():
    cal = WorkingCalendar.china()
    assert cal.describe()["years_loaded"] == []
    cal.is_working_day(date(2026, 5, 1))
    assert cal.describe()["years_loaded"] == [2026]
    assert WorkingCalendar.china(years=[2025, 2026]).describe()["years_loaded"] == [2025, 2026]


# --- working hours ---------------------------------------------------------------------------


def test_sixteen_working_hours_skip_the_national_day_week(cn):
    # 1.5 h on 09-30, 10-01..07 off, 7.5 h on 10-08, 7 h on 10-09.
    due = cn.add(at(2026, 9, 30, 16), 16 * HOUR)
    assert due.tzinfo is not None and due.utcoffset() == timedelta(0)
    assert local(due) == at(2026, 10, 9, 17)
    assert cn.add_working_hours(at(2026, 9, 30, 16), 16) == due
    assert cn.elapsed(at(2026, 9, 30, 16), due) == 16 * HOUR


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (at(2026, 9, 29, 11), 2, at(2026, 9, 29, 14, 30)),  # lunch break skipped
        (at(2026, 9, 29, 17), 1, at(2026, 9, 30, 9)),  # night skipped
        (at(2026, 3, 13, 17), 1, at(2026, 3, 16, 9)),  # Friday -> Monday, weekend skipped
        (at(2026, 9, 29, 7), 1, at(2026, 9, 29, 9, 30)),  # before opening
        (at(2026, 9, 29, 18), 1, at(2026, 9, 30, 9, 30)),  # after closing
        (at(2026, 9, 29, 12), 1, at(2026, 9, 29, 14, 30)),  # during lunch
        (at(2026, 9, 29, 16, 30), 1, at(2026, 9, 29, 17, 30)),  # ends exactly at close: stays
        (at(2026, 9, 29, 11), 1, at(2026, 9, 29, 12)),  # ends exactly at lunch: stays
        (at(2026, 9, 29, 8, 30), 7.5, at(2026, 9, 29, 17, 30)),  # a whole day
        (at(2026, 10, 9, 17), 1, at(2026, 10, 10, 9)),  # into the 调休 Saturday
    ],
)
def test_add_skips_non_working_time(cn, start, hours, expected):
    assert local(cn.add_working_hours(start, hours)) == expected


def test_add_zero_returns_start(cn):
    start = at(2026, 9, 29, 10, 15, 7)
    assert cn.add(start, 0) == start
    assert cn.add(start, 0).utcoffset() == timedelta(0)
    assert cn.add(at(2026, 10, 3, 10), 0) == at(2026, 10, 3, 10)


def test_inputs_in_other_zones_mean_the_same_instants(cn):
    start = at(2026, 9, 30, 16).astimezone(ZoneInfo("America/New_York"))
    assert local(cn.add(start, 16 * HOUR)) == at(2026, 10, 9, 17)


def test_working_time_is_half_open(cn):
    assert cn.is_working_time(at(2026, 9, 29, 8, 30))
    assert cn.is_working_time(at(2026, 9, 29, 11, 59, 59))
    assert not cn.is_working_time(at(2026, 9, 29, 12))
    assert not cn.is_working_time(at(2026, 9, 29, 17, 30))
    assert not cn.is_working_time(at(2026, 10, 2, 10))
    assert cn.is_working_time(at(2026, 10, 10, 10))


def test_elapsed_across_the_holiday_week_is_the_sum_of_its_parts(cn):
    start, middle, end = at(2026, 9, 30, 9), at(2026, 10, 4, 12), at(2026, 10, 9, 12)
    # 7 h on 09-30 + 7.5 h on 10-08 + 3.5 h on 10-09
    assert cn.elapsed(start, end) == 18 * HOUR
    assert cn.elapsed(start, middle) + cn.elapsed(middle, end) == cn.elapsed(start, end)
    assert cn.elapsed(at(2026, 10, 1), at(2026, 10, 8)) == 0
    assert cn.elapsed(end, start) == 0
    assert cn.elapsed(start, start) == 0
    assert cn.elapsed(at(2026, 9, 29, 11), at(2026, 9, 29, 14)) == 1.5 * HOUR


def test_negative_or_non_numeric_amounts_are_refused(cn):
    with pytest.raises(CalendarError):
        cn.add(at(2026, 9, 29, 10), -1)
    with pytest.raises(CalendarError):
        cn.add(at(2026, 9, 29, 10), float("nan"))
    with pytest.raises(CalendarError):
        cn.add_working_hours(at(2026, 9, 29, 10), "2")


def test_multi_month_spans(cn):
    start = at(2026, 1, 5, 8, 30)
    due = cn.add(start, 1000 * HOUR)
    assert cn.elapsed(start, due) == 1000 * HOUR
    assert cn.is_working_day(local(due).date())


ZONES = st.sampled_from([SH, UTC, ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")])
STARTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=ZONES, allow_imaginary=False
)
SECONDS = st.floats(min_value=0, max_value=400 * HOUR, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(start=STARTS, seconds=SECONDS)
def test_add_then_elapsed_round_trips(cn, start, seconds):
    due = cn.add(start, seconds)
    assert due >= start
    assert abs(cn.elapsed(start, due) - seconds) <= 1e-6


@settings(max_examples=300, deadline=None)
@given(start=STARTS, a=SECONDS, b=SECONDS)
def test_add_is_monotonic(cn, start, a, b):
    lo, hi = sorted((a, b))
    assert cn.add(start, lo) <= cn.add(start, hi)


@settings(max_examples=100, deadline=None)
@given(start=STARTS, seconds=st.floats(min_value=1e-3, max_value=400 * HOUR))
def test_positive_add_ends_inside_or_at_the_close_of_a_working_period(cn, start, seconds):
    due = cn.add(start, seconds)
    just_before = due - timedelta(microseconds=1)
    assert cn.is_working_time(just_before)


# --- working days ----------------------------------------------------------------------------


def test_one_working_day_from_before_the_holiday(cn):
    assert local(cn.add_working_days(at(2026, 9, 30, 10), 1)) == at(2026, 10, 8, 17, 30)


def test_one_working_day_from_friday_lands_on_the_makeup_saturday(cn):
    assert local(cn.add_working_days(at(2026, 10, 9, 10), 1)) == at(2026, 10, 10, 17, 30)
    assert local(cn.add_working_days(at(2026, 10, 9, 23, 59), 1)) == at(2026, 10, 10, 17, 30)


def test_two_working_days_are_not_sixteen_working_hours(cn):
    start = at(2026, 9, 30, 10)
    two_days = cn.add_working_days(start, 2)
    sixteen_hours = cn.add(start, 16 * HOUR)
    assert local(two_days) == at(2026, 10, 9, 17, 30)
    assert local(sixteen_hours) == at(2026, 10, 9, 11)  # 6 h + 7.5 h + 2.5 h
    assert two_days != sixteen_hours


def test_zero_working_days_is_close_of_business(cn):
    assert local(cn.add_working_days(at(2026, 9, 30, 10), 0)) == at(2026, 9, 30, 17, 30)
    assert local(cn.add_working_days(at(2026, 10, 3, 10), 0)) == at(2026, 10, 8, 17, 30)


def test_working_days_received_on_a_day_off(cn):
    # Received Sunday 10-04 (holiday week): the first working day after it is 10-08.
    assert local(cn.add_working_days(at(2026, 10, 4, 15), 1)) == at(2026, 10, 8, 17, 30)
    assert local(cn.add_working_days(at(2026, 10, 10, 20), 1)) == at(2026, 10, 12, 17, 30)


def test_negative_working_days_are_refused(cn):
    with pytest.raises(CalendarError):
        cn.add_working_days(at(2026, 9, 30, 10), -1)


# --- overrides -------------------------------------------------------------------------------


def test_override_holiday_removes_the_day_and_workday_forces_it(tmp_path):
    path = tmp_path / "overrides.yaml"
    path.write_text(
        "# 本地公告\nholidays:\n  - 2026-09-29\n  - {date: 2026-09-28, name: 本地放假}\n"
        "workdays:\n  - 2026-10-11\n",
        encoding="utf-8",
    )
    ov = load_overrides(path)
    assert ov == CalendarOverrides(
        frozenset({date(2026, 9, 29), date(2026, 9, 28)}), frozenset({date(2026, 10, 11)}), str(path)
    )
    cal = WorkingCalendar.china(overrides=ov)
    assert not cal.is_working_day(date(2026, 9, 29))
    assert not cal.is_working_time(at(2026, 9, 29, 10))
    # Thu 09-24 17:00: 0.5 h, then Mid-Autumn 09-25, the weekend and both local days off.
    assert local(cal.add(at(2026, 9, 24, 17), 1 * HOUR)) == at(2026, 9, 30, 9)
    assert cal.elapsed(at(2026, 9, 28), at(2026, 9, 30)) == 0
    assert cal.is_working_day(date(2026, 10, 11))
    assert cal.describe()["overrides_source"] == str(path)
    assert WorkingCalendar.china().is_working_day(date(2026, 9, 29)), "other calendars are unaffected"


def test_override_workday_beats_a_package_holiday(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("workdays: [2026-10-02]\nholidays:\n", encoding="utf-8")
    cal = default_registry(load_overrides(path)).get("cn")
    assert cal.is_working_day(date(2026, 10, 2))
    assert local(cal.add(at(2026, 9, 30, 17), 1 * HOUR)) == at(2026, 10, 2, 9)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("holidays:\n  - 2027-01-01\n  - not-a-date\n", 3, "not a date"),
        ("holidays:\n  - 2027-02-30\n", 2, "not a valid date"),
        ("holidays:\n  - 2027-02-10\nworkdays:\n  - 2027-01-09\n  - 2027-02-10\n", 5, "also as a holiday"),
        ("# comment\nholidays: []\nvacations:\n  - 2027-01-01\n", 3, "unknown key 'vacations'"),
        ("- 2027-01-01\n- 2027-01-02\n", 1, "expected a mapping"),
        ("holidays: 2027-01-01\n", 1, "must be a list"),
        ("holidays:\n  - {day: 2027-01-01}\n", 2, "unknown key 'day'"),
        ("holidays:\n  - [2027-01-01\n", 3, "not valid YAML"),
    ],
)
def test_broken_override_file_names_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError) as caught:
        load_overrides(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message
    assert isinstance(caught.value, ValueError)


def test_sample_override_file_loads():
    ov = load_overrides(SAMPLE)
    assert ov.source == str(SAMPLE)
    assert not (ov.holidays & ov.workdays)


def test_overrides_refuse_a_date_in_both_lists():
    with pytest.raises(CalendarError):
        CalendarOverrides(frozenset({date(2027, 1, 1)}), frozenset({date(2027, 1, 1)}))


# --- 24x7, registry, validation --------------------------------------------------------------


def test_always_calendar_counts_every_second():
    cal = AlwaysCalendar()
    assert cal.name == "24x7"
    start = at(2026, 10, 1, 23)
    assert local(cal.add(start, 2 * HOUR)) == at(2026, 10, 2, 1)
    assert local(cal.add_working_hours(start, 24)) == at(2026, 10, 2, 23)
    assert local(cal.add_working_days(start, 3)) == at(2026, 10, 4, 23)
    assert cal.elapsed(start, at(2026, 10, 2, 23)) == 24 * HOUR
    assert cal.elapsed(at(2026, 10, 2), start) == 0
    assert cal.is_working_day(date(2026, 10, 1))
    assert cal.is_working_time(at(2026, 10, 1, 3))
    json.dumps(cal.describe())


def test_describe_is_json_able(cn):
    cn.is_working_day(date(2026, 10, 1))  # holidays load a year at a time, when first needed
    info = json.loads(json.dumps(cn.describe()))
    assert info["name"] == "cn"
    assert info["tz"] == "Asia/Shanghai"
    assert info["periods"] == ["08:30-12:00", "13:30-17:30"]
    assert info["weekend"] == [5, 6]
    assert info["holidays_known"] > 0 and info["workdays_known"] > 0


def test_registry():
    reg = default_registry()
    assert reg.names() == ["24x7", "cn"]
    assert "cn" in reg and "24x7" in reg and "nope" not in reg
    assert isinstance(reg.get("cn"), BusinessCalendar)
    with pytest.raises(CalendarError, match="24x7, cn"):
        reg.get("nope")
    custom = WorkingCalendar("night-shift", periods=((time(20), time(23)),), weekend=())
    reg.register(custom)
    assert reg.get("night-shift") is custom
    assert local(custom.add(at(2026, 10, 1, 22), 2 * HOUR)) == at(2026, 10, 2, 21)
    assert len(CalendarRegistry()) == 0


@pytest.mark.parametrize("cal", [WorkingCalendar.china(), AlwaysCalendar()], ids=["cn", "24x7"])
def test_naive_datetimes_are_refused(cal):
    naive = datetime(2026, 9, 30, 10)
    aware = at(2026, 9, 30, 10)
    for call in (
        lambda: cal.add(naive, 60),
        lambda: cal.add_working_hours(naive, 1),
        lambda: cal.add_working_days(naive, 1),
        lambda: cal.elapsed(naive, aware),
        lambda: cal.elapsed(aware, naive),
        lambda: cal.is_working_time(naive),
        lambda: cal.is_working_day(naive),
    ):
        with pytest.raises(CalendarError, match="timezone-aware"):
            call()


def test_bad_calendar_configuration_is_refused():
    with pytest.raises(CalendarError):
        WorkingCalendar("x", periods=((time(12), time(8)),))
    with pytest.raises(CalendarError):
        WorkingCalendar("x", periods=((time(8), time(12)), (time(11), time(13))))
    with pytest.raises(CalendarError):
        WorkingCalendar("x", tz="Mars/Olympus")
    with pytest.raises(CalendarError):
        WorkingCalendar("x", holidays={date(2026, 1, 1)}, workdays={date(2026, 1, 1)})
    never = WorkingCalendar("never", weekend=range(7))
    with pytest.raises(CalendarError, match="no working day"):
        never.add(at(2026, 1, 1), 1)
