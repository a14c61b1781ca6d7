"""The scaled demo clock (``GRIDFLOW_CLOCK_SCALE``) keeps one simulated timeline across restarts."""

from __future__ import annotations

import time

from gridflow.bootstrap import bootstrap
from gridflow.settings import Settings
from tests.integration.helpers import report


def _start(db_url: str, scale: float):
    return bootstrap(Settings(database_url=db_url, environment="test", clock_scale=scale, seed_demo=True),
                     runner="none")


def test_a_restart_continues_simulated_time_from_where_it_was(db_url):
    first = _start(db_url, 3600)  # one simulated hour per second
    opened = report(first.services)
    time.sleep(0.2)  # 12 simulated minutes
    at_stop = first.services.clock.now()
    first.close()
    second = _start(db_url, 3600)
    assert second.services.clock.now() >= at_stop
    later = report(second.services)
    with second.services.uow(write=False) as uow:
        times = [uow.cases.get(n).opened_at for n in (opened.number, later.number)]
    assert times[0] < times[1]
    second.close()


def test_changing_the_scale_continues_the_same_timeline(db_url):
    first = _start(db_url, 3600)
    time.sleep(0.1)
    at_stop = first.services.clock.now()
    first.close()
    slower = _start(db_url, 2)
    assert slower.services.clock.now() >= at_stop
    slower.close()
    real_time = _start(db_url, 1)  # scale 1 is the system clock: the stored timeline is not used
    assert real_time.services.clock.now() < at_stop
    real_time.close()
