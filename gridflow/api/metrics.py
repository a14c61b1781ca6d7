"""Prometheus metrics: actions, breaches, escalations, timer lag and request latency.

Counters come from committed changes (a :class:`Services` listener), so they
count what happened, whoever caused it; timer lag and the runner's state are
read when Prometheus scrapes. Each app has its own registry.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..bootstrap import App
from ..service.context import Change
from ..service.health import REASONS, Health, assess_health

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENESS_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 86400)


class _StateCollector:
    """Gauges read at scrape time: health and its reasons, pending and due timers, timer lag (how long
    the oldest due timer has waited), the runner and its failed polls, live streams."""

    def __init__(self, app: App, subscribers) -> None:
        self.app = app
        self.subscribers = subscribers

    def collect(self) -> Iterable[Any]:
        try:
            health = assess_health(self.app.services, self.app.runner)
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("metrics: cannot assess health: %s", exc)
            health = Health("unavailable", ("database_unavailable",), "unavailable", None)
        degraded = GaugeMetricFamily("gridflow_health_degraded",
                                     "1 while /healthz names this reason for not being ok", labels=["reason"])
        for reason in REASONS:
            degraded.add_metric([reason], 1.0 if reason in health.reasons else 0.0)
        yield degraded
        backlog = health.backlog
        if backlog is not None:
            yield GaugeMetricFamily("gridflow_timers_pending", "Timers stored and not yet fired",
                                    backlog.pending)
            yield GaugeMetricFamily("gridflow_timers_due", "Timers past their due time, not yet fired",
                                    backlog.due)
            yield GaugeMetricFamily("gridflow_timer_lag_seconds",
                                    "How long the oldest due timer has been waiting", backlog.lag_s)
        runner = self.app.runner
        status = getattr(runner, "status", None)
        if status is not None:
            yield GaugeMetricFamily("gridflow_runner_running", "1 while the in-process timer runner runs",
                                    1.0 if status.running else 0.0)
            yield GaugeMetricFamily("gridflow_runner_fired", "Timers fired by this process's runner",
                                    status.fired)
            yield GaugeMetricFamily("gridflow_runner_errors", "Timer firings that failed in this process",
                                    status.errors)
            yield GaugeMetricFamily("gridflow_runner_consecutive_failures",
                                    "The timer runner's polls failed in a row (0 after one that worked)",
                                    status.consecutive_failures)
        yield GaugeMetricFamily("gridflow_event_stream_subscribers", "Open Server-Sent Event streams",
                                self.subscribers())


class Metrics:
    def __init__(self, app: App, subscribers=lambda: 0) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reported = Counter("gridflow_cases_reported", "Cases reported", ["workflow"], registry=r)
        self.actions = Counter("gridflow_actions", "Case actions taken", ["workflow", "action", "role"],
                               registry=r)
        self.events = Counter("gridflow_case_events", "History events appended", ["type"], registry=r)
        self.breaches = Counter("gridflow_deadline_breaches", "Deadlines breached", ["workflow", "timer"],
                                registry=r)
        self.escalations = Counter("gridflow_escalations", "Cases escalated a level",
                                   ["workflow", "to_level"], registry=r)
        self.lateness = Histogram("gridflow_timer_lateness_seconds",
                                  "How late a timer fired after it fell due",
                                  ["kind"], buckets=LATENESS_BUCKETS, registry=r)
        self.requests = Histogram("gridflow_http_request_duration_seconds", "HTTP request latency",
                                  ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        r.register(_StateCollector(app, subscribers))

    def observe_change(self, change: Change) -> None:
        """A :class:`Services` listener."""
        wf = change.workflow
        for e in change.events:
            kind = e.get("type", "")
            data = e.get("data") or {}
            self.events.labels(kind).inc()
            if kind == "CaseReported":
                self.reported.labels(wf).inc()
            elif kind == "ActionTaken":
                self.actions.labels(wf, data.get("action", ""), e.get("role", "")).inc()
            elif kind == "DeadlineBreached":
                self.breaches.labels(wf, data.get("timer", "")).inc()
                if data.get("lateness_s") is not None:
                    self.lateness.labels("breach").observe(float(data["lateness_s"]))
            elif kind == "DeadlineWarned" and data.get("timer_due_at") and e.get("at"):
                late = (datetime.fromisoformat(e["at"]) - datetime.fromisoformat(data["timer_due_at"]))
                self.lateness.labels("warning").observe(max(0.0, late.total_seconds()))
            elif kind == "CaseEscalated":
                self.escalations.labels(wf, str(data.get("to_level", ""))).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestTimer:
    """Pure ASGI middleware timing each request by its route template (not its raw path)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            if route != "/api/v1/events":  # streams last as long as the client listens
                self.metrics.requests.labels(scope["method"], route, str(status)).observe(
                    time.perf_counter() - start)
