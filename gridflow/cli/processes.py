"""``gridflow scheduler`` and ``gridflow worker``: the production processes, found by name.

They live in ``gridflow.processes`` and need Redis and Celery; the CLI looks them up when
asked, so an installation without them still has every other command.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Callable

import typer

from .common import fail, friendly, settings


def _production(module: str, attr: str) -> Callable:
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise fail(f"production mode is not available in this installation ({module}.{attr}: {exc}); "
                   "see docs/at-scale.md") from None


def _wiring():
    from ..bootstrap import Wiring

    return Wiring(settings())


@friendly
def scheduler() -> None:
    """Production: index pending timers in Redis and hand due ones to Celery workers."""
    run_scheduler = _production("gridflow.processes.scheduler", "run_scheduler")
    run_scheduler(_wiring())


@friendly
def worker(concurrency: Annotated[int, typer.Option(min=1, help="Worker processes")] = 2,
           loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO") -> None:
    """Production: a Celery worker that fires timers and delivers notifications."""
    run_worker = _production("gridflow.processes.worker", "run_worker")
    run_worker(_wiring(), concurrency=concurrency, loglevel=loglevel)
