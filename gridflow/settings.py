"""Settings from the environment (prefix ``GRIDFLOW_``), read when the app is built, never at import."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDFLOW_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    #: SQLite by default; ``postgresql+psycopg://user@host/db`` for production.
    database_url: str = "sqlite:///gridflow.db"
    #: A Redis URL here moves timer firing out of the API into ``gridflow scheduler`` + ``gridflow worker``.
    broker_url: str | None = None
    #: Seconds a SQLite reader waits out a lock (rare in WAL mode: recovery, a checkpoint).
    sqlite_busy_timeout: float = 30.0
    #: Seconds a SQLite write waits for the lock (other writers of this process, then another process
    #: holding it) before it is refused with 503 and Retry-After: reads never queue behind it.
    sqlite_write_wait: float = 3.0
    #: Timer-runner polls failed in a row before /healthz says ``runner_failing`` (503).
    health_runner_failures: int = 3
    #: Seconds the oldest due timer may wait to be fired before /healthz says ``timers_overdue``.
    health_max_timer_lag: float = 300.0
    #: Redis for the timer index (defaults to the broker URL).
    redis_url: str | None = None
    redis_prefix: str = "gridflow"
    #: The city's rule on visit kinds that do not count as a care visit, per register group (JSON, e.g.
    #: ``{"失能": ["phone"]}``); unset: ``service.care.UNCOUNTED_KINDS``.
    care_uncounted_kinds: dict[str, list[str]] | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    #: Seconds between polls of the in-process timer runner.
    timer_poll_interval: float = 1.0
    timer_batch_size: int = 500
    #: How long a claimed timer stays reserved for the runner that claimed it.
    timer_claim_seconds: float = 60.0
    #: Notifications leaving the outbox are also POSTed here as JSON (retried with backoff until delivered).
    webhook_url: str | None = None
    #: Attempts at one outbox row (a notification, a subscriber's webhook, an SMS) before it is given up
    #: (status ``dead``: a dead letter an admin can list and retry, ``/api/v1/admin/dead-letters``).
    outbox_max_attempts: int = Field(10, ge=1, le=100)
    #: Seconds before the first retry of a failed delivery; doubled each further attempt (capped at an hour).
    outbox_backoff_base: float = Field(2.0, gt=0, le=3600)
    #: Resident notices (受理回执, 延期/办结/重办告知) go to this generic SMS gateway (JSON ``{phone, text,
    #: id}``, see docs/channels.md); unset, they are only logged, the phone masked.
    sms_gateway_url: str | None = None
    #: Bearer token for the SMS gateway (never logged).
    sms_gateway_token: str | None = None
    #: The SMS text: ``{message}`` (the notice), ``{signature}``, ``{number}`` (the case), ``{kind}``.
    sms_template: str = "【{signature}】{message}"
    #: The SMS signature (签名) registered with the provider.
    sms_signature: str = "网格通"
    #: 调休/holiday override file laid over the ``holidays`` package (default: the shipped
    #: ``gridflow/workflows/calendars/cn_overrides.yaml``); see docs/calendars.md.
    calendar_overrides: Path | None = None
    #: Unit calendars (extended hours, weekend rotas) and the units that use them (default: the shipped
    #: ``gridflow/workflows/calendars/unit_calendars.yaml``).
    unit_calendars: Path | None = None
    #: ``system`` (real time), or ``manual`` / ``manual:<ISO datetime>``: a clock that stands still until
    #: an admin moves it (``POST /api/v1/admin/clock``), for training, demos and acceptance tests.
    clock: str = "system"
    #: Extra directory of workflow YAML files, loaded beside the shipped ones.
    workflows_dir: Path | None = None
    #: The city's event catalogue files (``path1:path2``, os.pathsep-separated), laid in order over the
    #: shipped ``gridflow/workflows/categories/categories.yaml``: each adds entries and overrides what it
    #: names; one that says ``replace: true`` starts afresh (docs/categories.md).
    categories: str | None = None
    #: Seed a demo organisation and demo users into an empty database.
    seed_demo: bool = True
    #: The organisation files the demo seed loads (default: the sample in ``examples/org``); see
    #: docs/organisation.md. A JSON list in the environment: ``GRIDFLOW_ORG_FILES='["units.yaml", …]'``.
    org_files: list[Path] | None = None
    #: Simulated seconds per real second (demo); 1 = real time.
    clock_scale: float = 1.0
    #: Failed authentications allowed per client address and per credential (``limits`` notation:
    #: "20/minute", "100 per hour"); over it, 429 with Retry-After. Counted in Redis when one is configured.
    auth_failure_limit: str = "20/minute"
    #: Reports without credentials allowed per client address.
    anonymous_report_limit: str = "10/hour"
    #: Possible duplicates flagged at intake (重复件): an open case of the same category within this many
    #: metres and hours before the new report, or from the same caller's phone within so many days.
    #: 0 turns a rule off.
    duplicate_radius_m: float = Field(100.0, ge=0, le=10_000)
    duplicate_window_hours: float = Field(72.0, ge=0, le=24 * 90)
    duplicate_phone_window_days: float = Field(7.0, ge=0, le=90)
    #: Live event streams (``GET /api/v1/events``) one caller may hold open at once, per API process.
    sse_streams_per_caller: int = Field(5, ge=1)
    #: Seconds an idle keep-alive connection stays open; a request whose headers take longer than
    #: ``header_timeout`` seconds to arrive is cut off (slowloris).
    keep_alive_timeout: float = Field(5.0, gt=0)
    header_timeout: float = Field(10.0, gt=0)
    #: Request headers larger than this are refused (431).
    max_header_bytes: int = Field(64 * 1024, ge=1024)
    #: Connections one server process serves at once; above it uvicorn answers 503.
    max_connections: int = Field(1000, ge=1)
    #: Seconds a stopping server waits for open requests (and live streams) before closing them.
    shutdown_grace: int = Field(10, ge=0)
    #: Largest request body accepted, in bytes (413 ``payload_too_large`` above it, before any parsing).
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    #: Console sessions end after this many minutes without a request (idle) and this many hours after
    #: sign-in however busy (absolute).
    session_idle_minutes: float = Field(30.0, gt=0)
    session_absolute_hours: float = Field(12.0, gt=0)
    #: Mark the console's session cookie ``Secure``: ``auto`` when the request came over https (behind a
    #: TLS proxy, run uvicorn with ``--proxy-headers``), ``always`` or ``never``.
    session_cookie_secure: Literal["auto", "always", "never"] = "auto"
    log_json: bool = False
    log_level: str = "INFO"

    @field_validator("auth_failure_limit", "anonymous_report_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate such as '20/minute' or '10 per hour'") from None
        return value

    @field_validator("sms_template")
    @classmethod
    def _sms_template(cls, value: str) -> str:
        try:
            value.format(message="", signature="", number="", kind="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"sms_template {value!r}: only {{message}}, {{signature}}, {{number}} and "
                             f"{{kind}} may be used ({exc})") from None
        return value

    @field_validator("clock")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value.strip()

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        if self.manual_clock and self.environment == "production":
            raise ValueError("a manual clock (GRIDFLOW_CLOCK / --clock manual) is for training, demos and "
                             "acceptance tests: production runs on real time; unset GRIDFLOW_CLOCK")
        if self.manual_clock and self.clock_scale != 1.0:
            raise ValueError("GRIDFLOW_CLOCK=manual and GRIDFLOW_CLOCK_SCALE are two different clocks: "
                             "choose one")
        if self.environment == "production":
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs GRIDFLOW_DATABASE_URL pointing at PostgreSQL, not SQLite")
            if self.seed_demo:
                raise ValueError("set GRIDFLOW_SEED_DEMO=false in production: demo users have known tokens "
                                 "and a known password")
        return self

    @property
    def manual_clock(self) -> bool:
        return parse_clock(self.clock)[0] == "manual"

    @property
    def manual_clock_start(self) -> datetime | None:
        """Where a manual clock starts (None: at the real time it is built)."""
        return parse_clock(self.clock)[1]

    @property
    def category_files(self) -> list[Path]:
        return [Path(p) for p in (self.categories or "").split(os.pathsep) if p.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def timer_index_url(self) -> str | None:
        return self.redis_url or self.broker_url


def parse_clock(value: str) -> tuple[str, datetime | None]:
    """``system`` | ``manual`` | ``manual:<ISO datetime>`` (with an offset, or read as UTC)."""
    kind, _, start = value.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "system" and not start:
        return "system", None
    if kind != "manual":
        raise ValueError(f"clock {value!r}: expected 'system', 'manual' or 'manual:<ISO datetime>'")
    if not start.strip():
        return "manual", None
    try:
        at = datetime.fromisoformat(start.strip())
    except ValueError:
        raise ValueError(f"clock {value!r}: {start.strip()!r} is not an ISO datetime "
                         "(e.g. manual:2026-03-02T09:00:00+08:00)") from None
    if not 1970 <= at.year <= 2200:
        raise ValueError(f"clock {value!r}: start between 1970 and 2200")
    return "manual", at if at.tzinfo else at.replace(tzinfo=timezone.utc)
