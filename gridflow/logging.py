"""Structured logs: one JSON object per line in production, so a log shipper can index them.

Every record keeps the context it was given as ``extra=``: the case number
(``case``) and timer id (``timer_id``) on timer paths, lateness, the outbox row,
and inside a Celery task its task id — so "what happened to GF-2026-000042" is a
single query over the logs of the API, the scheduler and every worker.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = (frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
             | {"message", "asctime", "taskName"})


def _task_id() -> str | None:
    """The running Celery task's id, if this record was logged inside one."""
    celery_state = sys.modules.get("celery._state")
    if celery_state is None:
        return None
    task = celery_state.get_current_task()
    request = getattr(task, "request", None) if task is not None else None
    return getattr(request, "id", None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, process role and all extras."""

    def __init__(self, role: str | None = None) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if self.role:
            doc["role"] = self.role
        task_id = _task_id()
        if task_id:
            doc["task_id"] = task_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for development; extras are appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")]
        return f"{line} [{' '.join(extras)}]" if extras else line


def wants_json(settings: Any) -> bool:
    return bool(getattr(settings, "log_json", False)) or getattr(settings, "environment", "") == "production"


def configure_logging(settings: Any, role: str | None = None) -> None:
    """Send every log record (ours, Celery's, SQLAlchemy's) to stderr in one format.

    JSON when ``GRIDFLOW_LOG_JSON=true`` or in production; text otherwise.
    Replaces any handlers already on the root logger, so calling it twice is harmless.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role) if wants_json(settings) else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(settings, "log_level", "INFO").upper())
    # Per-statement chatter from the database driver is never wanted at INFO.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
