"""The one timer contract: the store runners claim due timers in, and what every runner is.

A runner claims due timers in the store, then has them fired in batches through
:func:`gridflow.service.timers.fire_timers` — in this process, or by Celery workers —
where each firing *takes* its timer (``uow.cases.take_timer``: deleted and its case
loaded in one statement, in the firing transaction). A claim that runs out (its runner
died) frees the timer for another; a runner started after downtime fires everything
that fell due meanwhile, each once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Sequence, runtime_checkable

#: Timers fired in one transaction (one Celery task, one in-process batch).
FIRE_BATCH = 50


class TimerStore(Protocol):
    """Claims on due timers (:class:`gridflow.adapters.timer_store.SqlTimerStore`)."""

    def claim(self, now: datetime, runner: str, seconds: float, *, limit: int | None = None,
              ids: Sequence[int] | None = None) -> list[tuple[int, datetime]]:
        """Reserve due timers nobody has in hand for ``runner`` until ``now + seconds``: (id, due_at)."""
        ...

    def release(self, ids: Sequence[int], runner: str) -> None:
        """Hand back timers ``runner`` claimed and will not have fired."""
        ...

    def release_all(self) -> int:
        """Hand back every claim."""
        ...


@dataclass
class RunnerStatus:
    kind: str
    running: bool = False
    last_poll_at: datetime | None = None
    fired: int = 0
    stale: int = 0
    errors: int = 0
    last_error: str | None = None
    max_lateness_s: float = 0.0
    #: Polls failed in a row (0 once one claims and fires all it claimed): a runner that cannot write.
    consecutive_failures: int = 0

    def poll_done(self, ok: bool) -> None:
        self.consecutive_failures = 0 if ok else self.consecutive_failures + 1

    def as_dict(self) -> dict:
        return {"kind": self.kind, "running": self.running,
                "last_poll_at": self.last_poll_at.isoformat() if self.last_poll_at else None,
                "fired": self.fired, "stale": self.stale, "errors": self.errors,
                "last_error": self.last_error, "consecutive_failures": self.consecutive_failures,
                "max_lateness_s": round(self.max_lateness_s, 3)}


@runtime_checkable
class TimerRunner(Protocol):
    """Fires every timer that falls due, once in effect, through the timer store and ``fire_timers``.

    ``start`` begins firing in the background and ``stop`` ends it (the inline runner has no
    background: it fires when ``run_due`` is called). ``status`` is what /health and /metrics show.
    """

    kind: str
    name: str
    status: RunnerStatus

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


class Wire(Protocol):
    """How a process gets its wired application (:class:`gridflow.bootstrap.Wiring`).

    Processes never import the composition root: whoever starts them (``gridflow scheduler``,
    ``gridflow worker``, ``celery -A gridflow.bootstrap:celery``) hands them this.
    """

    settings: Any

    def __call__(self, **options: Any) -> Any:
        """A wired app (services, notifiers, runner, Celery app) for this process."""
        ...
