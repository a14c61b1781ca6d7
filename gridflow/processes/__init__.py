"""What drives the service from outside, beside the API and the CLI: timer runners, production processes.

Where do timers fire? Always in :func:`gridflow.service.timers.fire_timers`, reached by

- :mod:`.runners` — in this process: :class:`~.runners.InlineTimerRunner` (tests, demo) and
  :class:`~.runners.ThreadTimerRunner` (the embedded default of ``gridflow serve``);
- :mod:`.celery_runner` — the scheduler, which hands due timers to Celery workers
  (:mod:`.worker`); ``gridflow scheduler`` runs it (:mod:`.scheduler`).

All share :mod:`.contract`. :mod:`.outbox` delivers notifications after the changes that caused them.
"""
