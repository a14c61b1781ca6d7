"""Settings from the environment (prefix ``GRIDFLOW_``), read when the app is built, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDFLOW_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    #: SQLite by default; ``postgresql+psycopg://user@host/db`` for production.
    database_url: str = "sqlite:///gridflow.db"
    #: A Redis URL here moves timer firing out of the API into ``gridflow scheduler`` + ``gridflow worker``.
    broker_url: str | None = None
    #: Seconds a SQLite writer waits for another writer's lock before giving up with a clear error.
    sqlite_busy_timeout: float = 30.0
    #: Redis for the timer index (defaults to the broker URL).
    redis_url: str | None = None
    redis_prefix: str = "gridflow"
    host: str = "127.0.0.1"
    port: int = 8000
    #: Seconds between polls of the in-process timer runner.
    timer_poll_interval: float = 1.0
    timer_batch_size: int = 500
    #: How long a claimed timer stays reserved for the runner that claimed it.
    timer_claim_seconds: float = 60.0
    #: Notifications leaving the outbox are also POSTed here as JSON (retried with backoff until delivered).
    webhook_url: str | None = None
    calendar_overrides: Path | None = None
    #: Extra directory of workflow YAML files, loaded beside the shipped ones.
    workflows_dir: Path | None = None
    #: Seed a demo organisation and demo users into an empty database.
    seed_demo: bool = True
    #: Simulated seconds per real second (demo); 1 = real time.
    clock_scale: float = 1.0
    #: Largest request body accepted, in bytes (413 ``payload_too_large`` above it, before any parsing).
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    log_json: bool = False
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        if self.environment == "production":
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs GRIDFLOW_DATABASE_URL pointing at PostgreSQL, not SQLite")
            if self.seed_demo:
                raise ValueError("set GRIDFLOW_SEED_DEMO=false in production: demo users have known tokens")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def timer_index_url(self) -> str | None:
        return self.redis_url or self.broker_url
