"""Timer runners. All share one contract: claim due timers, fire each through the service.

- :class:`InlineTimerRunner` fires due timers when told to (tests, CLI, demo on a manual clock).
- :class:`ThreadTimerRunner` polls in a background thread (the embedded default of ``gridflow serve``).
- The Celery runner (``gridflow scheduler`` + ``gridflow worker``) lives in :mod:`gridflow.adapters.celery_app`.

Timers are rows in the database; a runner that dies leaves its claims to expire
and be taken over, and a runner that starts after downtime fires everything
that fell due meanwhile (catch-up), each once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime

from ..engine.errors import GridflowError
from ..service.timers import FireOutcome, claim_due_timers, fire_timer
from ..service.context import Services

log = logging.getLogger(__name__)


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
    lateness: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "running": self.running,
                "last_poll_at": self.last_poll_at.isoformat() if self.last_poll_at else None,
                "fired": self.fired, "stale": self.stale, "errors": self.errors, "last_error": self.last_error,
                "max_lateness_s": round(self.max_lateness_s, 3)}


class InlineTimerRunner:
    """Fires due timers synchronously when ``run_due`` is called."""

    kind = "inline"

    def __init__(self, svc: Services, name: str | None = None) -> None:
        self.svc = svc
        self.name = name or f"{self.kind}-{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.status = RunnerStatus(self.kind)

    def run_due(self, limit: int | None = None) -> list[FireOutcome]:
        """Claim and fire everything due now, repeating until nothing is due (timers can beget timers)."""
        outcomes: list[FireOutcome] = []
        while True:
            claimed = claim_due_timers(self.svc, self.name, limit)
            self.status.last_poll_at = self.svc.clock.now()
            if not claimed:
                return outcomes
            for timer_id, _due in claimed:
                outcome = self._fire(timer_id)
                if outcome is not None:
                    outcomes.append(outcome)

    def _fire(self, timer_id: int) -> FireOutcome | None:
        try:
            outcome = fire_timer(self.svc, timer_id)
        except GridflowError as exc:
            self.status.errors += 1
            self.status.last_error = exc.message
            log.error("timer %s failed: %s", timer_id, exc.message, extra={"timer_id": timer_id})
            return None
        if outcome.status == "fired":
            self.status.fired += 1
            if outcome.lateness_s is not None:
                self.status.max_lateness_s = max(self.status.max_lateness_s, outcome.lateness_s)
            log.info("timer fired", extra={"timer_id": timer_id, "case": outcome.number,
                                           "events": list(outcome.events), "lateness_s": outcome.lateness_s})
        elif outcome.status == "stale":
            self.status.stale += 1
        return outcome


class ThreadTimerRunner(InlineTimerRunner):
    """Polls for due timers every ``interval`` seconds in a daemon thread.

    In the embedded default it also delivers the outbox (notifications, webhooks) after each poll,
    the job Celery workers do at scale.
    """

    kind = "thread"

    def __init__(self, svc: Services, interval: float | None = None, name: str | None = None) -> None:
        super().__init__(svc, name)
        self.interval = interval if interval is not None else svc.settings.timer_poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        from .notifiers import notifiers_from_settings
        self.notifiers = notifiers_from_settings(svc.settings)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self.status.running = True
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self.status.running = False

    def _loop(self) -> None:
        from .outbox import dispatch_outbox

        while not self._stop.is_set():
            try:
                self.run_due()
                dispatch_outbox(self.svc, self.notifiers)
            except GridflowError as exc:  # database briefly away: log, wait, try again
                self.status.errors += 1
                self.status.last_error = exc.message
                log.warning("timer runner poll failed: %s", exc.message)
            except Exception as exc:  # pragma: no cover - keep the runner alive whatever happens
                self.status.errors += 1
                self.status.last_error = repr(exc)
                log.exception("timer runner poll crashed")
            self._stop.wait(self.interval)
