"""Celery is configured for short, idempotent, late-acknowledged tasks; logs are one JSON object per line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gridflow.adapters.celery_app import FIRE_TIMERS, OUTBOX_QUEUE, TIMER_QUEUE, make_celery
from gridflow.logging import JsonFormatter, configure_logging
from gridflow.settings import Settings


def _conf(**settings):
    return make_celery(Settings(broker_url="redis://127.0.0.1:6379/0", redis_prefix="city-a",
                                **settings)).conf


def test_tasks_are_acknowledged_late_and_requeued_when_their_worker_dies():
    conf = _conf()
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1


def test_visibility_timeout_outlasts_any_task_which_ends_before_its_reservation():
    conf = _conf(timer_claim_seconds=60)
    assert conf.task_soft_time_limit < conf.task_time_limit < 60
    assert conf.broker_transport_options["visibility_timeout"] > 2 * conf.task_time_limit


def test_every_broker_key_carries_the_deployment_prefix():
    assert _conf().broker_transport_options["global_keyprefix"] == "city-a:broker:"
    assert {q.name for q in _conf().task_queues} == {TIMER_QUEUE, OUTBOX_QUEUE}
    assert _conf().task_routes[FIRE_TIMERS] == {"queue": TIMER_QUEUE}


def test_production_mode_needs_a_broker():
    with pytest.raises(ValueError, match="GRIDFLOW_BROKER_URL"):
        make_celery(Settings())


def test_json_log_lines_carry_the_case_number_and_timer_id():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("worker"))
    logger = logging.getLogger("gridflow.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("timer fired", extra={"case": "GF-2026-000042", "timer_id": 7, "lateness_s": 0.4})
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["msg"] == "timer fired" and doc["level"] == "WARNING" and doc["role"] == "worker"
    assert (doc["case"], doc["timer_id"], doc["lateness_s"]) == ("GF-2026-000042", 7, 0.4)


def test_production_logs_are_json_and_development_logs_are_text():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(Settings(environment="production", database_url="postgresql+psycopg://x/y",
                                   seed_demo=False))
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        configure_logging(Settings())
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_celery_command_line_finds_the_wired_app_in_bootstrap(tmp_path, monkeypatch):
    """``celery -A gridflow.bootstrap:celery worker`` gets gridflow's tasks and each pool process's wiring."""
    from celery.app.utils import find_app

    import gridflow.bootstrap as bootstrap_module
    from gridflow.adapters.db import Database
    from gridflow.processes import worker

    url = f"sqlite:///{tmp_path / 'gridflow.db'}"
    Database(url).upgrade()
    monkeypatch.setenv("GRIDFLOW_DATABASE_URL", url)
    monkeypatch.setenv("GRIDFLOW_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr(worker, "_wire", None)
    monkeypatch.delitem(vars(bootstrap_module), "celery", raising=False)  # built anew from this environment
    app = find_app("gridflow.bootstrap:celery")
    assert {FIRE_TIMERS, "gridflow.dispatch_outbox"} <= set(app.tasks)
    assert worker._wire is not None and worker._wire.settings.database_url == url
