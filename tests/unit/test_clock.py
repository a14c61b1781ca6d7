"""Clocks: time is a port, and no clock ever runs backwards."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gridflow.engine import Clock, ManualClock, ScaledClock, SystemClock
from gridflow.engine.clock import ClockEpoch, ensure_aware

UTC = timezone.utc
START = datetime(2026, 3, 9, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_a_manual_clock_stands_still_until_told_to_move():
    clock = ManualClock(START)
    assert clock.now() == START and clock.now().tzinfo is UTC
    assert clock.advance(minutes=30) == START + timedelta(minutes=30)
    assert clock.advance(timedelta(hours=1)) == START + timedelta(hours=1, minutes=30)
    assert clock.set(START + timedelta(days=2)) == START + timedelta(days=2)
    assert clock.now() == START + timedelta(days=2)


def test_a_manual_clock_never_runs_backwards():
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="never runs backwards"):
        clock.advance(minutes=-1)
    with pytest.raises(ValueError, match="never runs backwards"):
        clock.set(START - timedelta(seconds=1))
    assert clock.now() == START


def test_a_manual_clock_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 3, 9, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(START).set(datetime(2026, 3, 10))


def test_a_manual_clock_advanced_from_many_threads_loses_no_step():
    clock = ManualClock(START)

    def tick():
        for _ in range(500):
            clock.advance(seconds=1)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == START + timedelta(seconds=2000)


def test_a_scaled_clock_runs_factor_times_faster_than_the_time_it_measures():
    ticks = iter([100.0, 100.0, 101.5, 103.0])
    clock = ScaledClock(START, 3600, monotonic=lambda: next(ticks))
    assert clock.factor == 3600
    assert clock.now() == START
    assert clock.now() == START + timedelta(hours=1.5)
    assert clock.now() == START + timedelta(hours=3)


def test_a_scaled_clock_needs_a_positive_factor():
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(START, 0)


def test_the_system_clock_gives_aware_utc_now():
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is UTC and before <= now <= datetime.now(UTC)


def test_every_clock_satisfies_the_clock_port():
    for clock in (SystemClock(), ManualClock(START), ScaledClock(START, 60)):
        assert isinstance(clock, Clock)


def test_ensure_aware_converts_to_utc_and_refuses_naive_times():
    assert ensure_aware(START) == START and ensure_aware(START).tzinfo is UTC
    utc = datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
    assert ensure_aware(utc) is utc
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        ensure_aware(datetime(2026, 3, 9), "now")


def test_a_scaled_timeline_continues_from_its_epoch_however_late_it_is_resumed():
    epoch = ClockEpoch.starting(START, 3600)
    one_second_later = START + timedelta(seconds=1)
    assert epoch.simulated_at(one_second_later) == START + timedelta(hours=1)
    clock = ScaledClock.continuing(epoch, one_second_later, monotonic=lambda: 0.0)
    assert clock.now() == START + timedelta(hours=1) and clock.factor == 3600


def test_a_scaled_timeline_never_goes_back_when_the_wall_clock_does_or_the_factor_changes():
    epoch = ClockEpoch(START, START + timedelta(days=3), 60)
    assert ScaledClock.continuing(epoch, START - timedelta(hours=1), monotonic=lambda: 0.0).now() \
        == START + timedelta(days=3)
    later = START + timedelta(minutes=1)
    rebased = epoch.rebased(later, 1.5)
    assert rebased.simulated == START + timedelta(days=3, hours=1) and rebased.factor == 1.5
    assert rebased.simulated_at(later + timedelta(seconds=2)) == START + timedelta(days=3, hours=1, seconds=3)
    assert ClockEpoch.from_json(rebased.to_json()) == rebased
    with pytest.raises(ValueError, match="positive"):
        ClockEpoch(START, START, 0)
