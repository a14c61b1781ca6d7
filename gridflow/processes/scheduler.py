"""``gridflow scheduler``: the Celery runner's scheduler (:mod:`.celery_runner`) as a process of its own."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from ..adapters.timer_index import index_key
from ..logging import configure_logging
from .contract import Wire

log = logging.getLogger(__name__)


def run_scheduler(wire: Wire, **options: Any) -> None:
    """Blocks until Ctrl-C or SIGTERM. ``options`` go to :class:`~.celery_runner.Scheduler`."""
    settings = wire.settings
    configure_logging(settings, role="scheduler")
    app = wire(runner="celery", runner_options=options)
    runner = app.runner
    stop = threading.Event()

    def _stop(signum, _frame) -> None:
        log.info("scheduler stopping (signal %d)", signum, extra={"scheduler": runner.name})
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    log.info("scheduler started", extra={"scheduler": runner.name, "index": index_key(settings)})
    try:
        runner.run(stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        app.close()  # stops the runner: its Redis clients close
        log.info("scheduler stopped", extra={"scheduler": runner.name, **vars(runner.scheduler.stats)})
