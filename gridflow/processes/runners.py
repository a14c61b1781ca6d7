"""Timer runners in this process: they claim due timers and fire them in batches, as Celery workers do.

- :class:`InlineTimerRunner` fires due timers when told to (tests, CLI, demo on a manual clock).
- :class:`ThreadTimerRunner` polls in a background thread (the embedded default of ``gridflow serve``)
  and delivers the outbox after each poll.

The Celery runner (``gridflow scheduler`` + ``gridflow worker``) is :mod:`gridflow.processes.celery_runner`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Sequence

from ..adapters.channels import subscriber_lookup
from ..adapters.notifiers import Notifier, notifiers_from_settings
from ..adapters.timer_store import SqlTimerStore
from ..engine.errors import GridflowError
from ..service.context import Services
from ..service.timers import FireOutcome, fire_timers
from .contract import FIRE_BATCH, RunnerStatus, TimerStore
from .outbox import dispatch_outbox

log = logging.getLogger(__name__)


class InlineTimerRunner:
    """Fires due timers synchronously when ``run_due`` is called; ``start``/``stop`` do nothing."""

    kind = "inline"

    def __init__(self, svc: Services, store: TimerStore | None = None, *, name: str | None = None,
                 batch: int = FIRE_BATCH) -> None:
        self.svc = svc
        self.store = store or SqlTimerStore(svc.db)
        self.name = name or f"{self.kind}-{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.batch = max(1, batch)
        self.status = RunnerStatus(self.kind)
        self._batch_failed = False
        # One pass at a time: the poll thread and an admin moving a manual clock may both ask.
        self._pass = threading.RLock()

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 10.0) -> None:
        pass

    def run_due(self, limit: int | None = None) -> list[FireOutcome]:
        """Claim and fire everything due now, repeating until nothing is due (timers can beget timers).

        Returns the outcomes of timers fired, stale or missing; failures are counted in ``status``.
        A pass already under way (the poll thread's) is waited for, then this one runs.
        """
        with self._pass:
            return self._run_due(limit)

    def _run_due(self, limit: int | None) -> list[FireOutcome]:
        settings = self.svc.settings
        outcomes: list[FireOutcome] = []
        self._batch_failed = False
        try:
            while True:
                claimed = self.store.claim(self.svc.clock.now(), self.name, settings.timer_claim_seconds,
                                           limit=limit or settings.timer_batch_size)
                self.status.last_poll_at = self.svc.clock.now()
                if not claimed:
                    self.status.poll_done(not self._batch_failed)
                    return outcomes
                ids = [timer_id for timer_id, _due in claimed]
                for start in range(0, len(ids), self.batch):
                    outcomes.extend(self._fire(ids[start:start + self.batch]))
        except GridflowError:  # the claim itself failed: the database is away, locked or full
            self.status.poll_done(False)
            raise

    def _fire(self, ids: Sequence[int]) -> list[FireOutcome]:
        """One batch through the service; what did not fire stays claimed and is offered again later."""
        try:
            outcomes = fire_timers(self.svc, list(ids))
        except GridflowError as exc:  # the database went away (or refused the write) mid-batch
            self._batch_failed = True
            self._failed(ids, exc.message)
            return []
        done = []
        for outcome in outcomes:
            if outcome.status == "failed":
                self._failed([outcome.timer_id], outcome.error or ",".join(outcome.events))
                continue
            done.append(outcome)
            if outcome.status == "fired":
                self.status.fired += 1
                if outcome.lateness_s is not None:
                    self.status.max_lateness_s = max(self.status.max_lateness_s, outcome.lateness_s)
                log.info("timer fired", extra={"timer_id": outcome.timer_id, "case": outcome.number,
                                               "events": list(outcome.events),
                                               "lateness_s": outcome.lateness_s})
            elif outcome.status == "stale":
                self.status.stale += 1
        return done

    def _failed(self, ids: Sequence[int], message: str) -> None:
        self.status.errors += len(ids)
        self.status.last_error = message
        for timer_id in ids:
            log.error("timer %s failed: %s", timer_id, message, extra={"timer_id": timer_id})


class ThreadTimerRunner(InlineTimerRunner):
    """Polls for due timers every ``interval`` seconds in a daemon thread.

    In the embedded default it also delivers the outbox (notifications, webhooks) after each poll,
    the job Celery workers do at scale.
    """

    kind = "thread"

    def __init__(self, svc: Services, store: TimerStore | None = None,
                 notifiers: Sequence[Notifier] | None = None, *, interval: float | None = None,
                 name: str | None = None, batch: int = FIRE_BATCH) -> None:
        super().__init__(svc, store, name=name, batch=batch)
        self.interval = interval if interval is not None else svc.settings.timer_poll_interval
        self.notifiers = list(notifiers) if notifiers is not None else notifiers_from_settings(
            svc.settings, subscriber_lookup(svc.db))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        while not self._stop.is_set():
            try:
                self.run_due()
                dispatch_outbox(self.svc, self.notifiers)
            except GridflowError as exc:  # database briefly away: log, wait, try again
                if self.status.consecutive_failures == 0:  # the outbox failed after a good poll
                    self.status.poll_done(False)
                self.status.errors += 1
                self.status.last_error = exc.message
                log.warning("timer runner poll failed: %s", exc.message)
            except Exception as exc:  # pragma: no cover - keep the runner alive whatever happens
                self.status.poll_done(False)
                self.status.errors += 1
                self.status.last_error = repr(exc)
                log.exception("timer runner poll crashed")
            self._stop.wait(self.interval)
