"""``gridflow serve``: the HTTP API and the timer runner in one process, or several uvicorn workers."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel
from rich.table import Table

from .common import DbOption, console, db_url, fail, friendly, settings

# The API is started by name, as uvicorn takes it: the CLI runs it but does not import it.
API_FACTORY = "gridflow.api.app:create_app"


@friendly
def serve(
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on [GRIDFLOW_HOST]")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port [GRIDFLOW_PORT]")] = None,
    db: DbOption = None,
    seed: Annotated[Optional[bool],
                    typer.Option("--seed/--no-seed",
                                 help="Seed the demo organisation (examples/org or GRIDFLOW_ORG_FILES)")
                    ] = None,
    workers: Annotated[int,
                       typer.Option(min=1, help="Worker processes (production; timers need Celery)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    clock: Annotated[Optional[str], typer.Option(
        help="system, or manual[:ISO-DATETIME]: a clock an admin moves with POST /api/v1/admin/clock "
             "(training, demos; refused in production) [GRIDFLOW_CLOCK]")] = None,
) -> None:
    """Run the API and the timer runner. Embedded default: a SQLite file here, the demo organisation seeded."""  # noqa: E501 (one line of --help)
    config = settings(host=host, port=port, database_url=db_url(db), seed_demo=seed, clock=clock)
    if workers > 1 and config.manual_clock:
        raise fail("a manual clock lives in one process: serve it with one worker (no --workers)")
    if workers > 1:
        _serve_workers(config, workers, log_level, host=host, port=port, db=db, seed=seed)
    else:
        _serve_embedded(config, log_level)


def _serve_workers(config, workers: int, log_level: str, *, host: Optional[str], port: Optional[int],
                   db: Optional[Path], seed: Optional[bool]) -> None:
    """Each uvicorn worker builds its own app from the environment, so the options are passed on there."""
    import uvicorn

    if config.is_sqlite or not config.broker_url:
        raise fail("several workers need PostgreSQL and a broker (GRIDFLOW_DATABASE_URL, "
                   "GRIDFLOW_BROKER_URL); see docs/at-scale.md")
    for key, value in (("HOST", host), ("PORT", port), ("DATABASE_URL", db_url(db)), ("SEED_DEMO", seed)):
        if value is not None:
            os.environ[f"GRIDFLOW_{key}"] = str(value)
    uvicorn.run(API_FACTORY, factory=True, host=config.host, port=config.port, workers=workers,
                log_level=log_level, **server_limits(config))


def _serve_embedded(config, log_level: str) -> None:
    import uvicorn
    from uvicorn.importer import import_from_string

    from ..bootstrap import bootstrap
    from ..logging import configure_logging, wants_json

    create_app = import_from_string(API_FACTORY)
    configure_logging(config, role="api")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin chatter says nothing to an operator
    gf = bootstrap(config)
    _banner(gf)
    # In JSON mode uvicorn's own records go through our handler too, one format for the log shipper.
    extra = {"log_config": None} if wants_json(config) else {}
    uvicorn.run(create_app(gf), host=config.host, port=config.port, log_level=log_level, **extra,
                **server_limits(config))


def server_limits(config) -> dict:
    """uvicorn's bounds on connections, from the settings: idle keep-alive connections close after
    ``keep_alive_timeout``; request headers must arrive within ``header_timeout`` (uvicorn has no such
    timeout: :mod:`.http_protocol` adds it); at most ``max_connections`` at once (503 beyond); a stop
    waits ``shutdown_grace`` seconds for open requests — live streams included — then closes them."""
    from .http_protocol import HeaderDeadlineProtocol, HeaderLimits

    HeaderDeadlineProtocol.configure(HeaderLimits(config.header_timeout, config.max_header_bytes))
    return {"http": HeaderDeadlineProtocol, "timeout_keep_alive": config.keep_alive_timeout,
            "limit_concurrency": config.max_connections, "timeout_graceful_shutdown": config.shutdown_grace,
            "h11_max_incomplete_event_size": config.max_header_bytes}


def _banner(gf) -> None:
    from .. import __version__
    from ..service.admin import user_for_token
    from ..demo.seed import DEMO_PASSWORD, USERS

    s = gf.settings
    base = f"http://{s.host}:{s.port}"
    runner = getattr(gf.runner, "kind", None) or "none (Celery workers fire timers)"
    clock = ""
    if s.manual_clock:
        clock = (f"\n[yellow]manual clock[/] at {gf.services.clock.now().isoformat()}: move it with "
                 f"POST {base}/api/v1/admin/clock {{\"advance\": \"PT4H\"}} (admin key)")
    console.print(Panel.fit(
        f"[b]gridflow {__version__}[/]  database: {gf.services.db.safe_url}  timer runner: {runner}\n"
        f"console  {base}/\nAPI docs {base}/docs\nhealth   {base}/healthz\nmetrics  {base}/metrics{clock}",
        title="gridflow serve", border_style="cyan"))
    if not s.seed_demo:
        return
    table = Table(title="demo API keys (X-API-Key or Authorization: Bearer)", show_lines=False)
    for col in ("token", "role", "user", "unit"):
        table.add_column(col)
    for uid, name, role, unit, token in USERS:
        if user_for_token(gf.services, token) is not None:
            table.add_row(token, role, f"{uid} {name}", unit)
    if table.row_count:
        console.print(table)
        console.print(f"try:  curl -H 'X-API-Key: demo-community' {base}/api/v1/worklist")
        console.print(f"console: sign in at {base}/ as a user above (e.g. cd-1) with the demo password "
                      f"{DEMO_PASSWORD!r}, or with its key")
