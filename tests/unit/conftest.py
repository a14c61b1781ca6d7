"""Fixtures for the engine's unit tests (helpers live in tests/unit/helpers.py)."""

from __future__ import annotations

import pytest

from gridflow.engine import Engine, ManualClock
from gridflow.workflows import load_shipped
from tests.unit.helpers import CALENDARS, MONDAY_9, REPORTER, Runner


@pytest.fixture(scope="session")
def calendars():
    return CALENDARS


@pytest.fixture(scope="session")
def shipped():
    return load_shipped(CALENDARS)


@pytest.fixture(scope="session")
def grid_event(shipped):
    return shipped["grid_event"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_9)


@pytest.fixture
def engine(grid_event) -> Engine:
    return Engine(grid_event, CALENDARS)


@pytest.fixture
def run(engine, clock) -> Runner:
    """A grid_event case reported by a resident on Monday 09:00."""
    r = Runner(engine, clock)
    r.open(REPORTER, origin_unit="community-1")
    return r
