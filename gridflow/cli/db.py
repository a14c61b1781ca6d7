"""``gridflow db``: create, upgrade and inspect the schema, without wiring the rest of gridflow."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from .common import DbOption, console, db_url, friendly, settings

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")


@contextmanager
def _database(db: Optional[Path]) -> Iterator:
    from ..bootstrap import open_database

    database = open_database(settings(database_url=db_url(db)))
    try:
        yield database
    finally:
        database.dispose()


@db_app.command("upgrade")
@friendly
def db_upgrade(db: DbOption = None) -> None:
    """Create or upgrade the schema to the version this code expects."""
    with _database(db) as database:
        database.upgrade()
        current, head = database.schema_status()
    console.print(f"{database.safe_url}: schema at {current} (expected {head})")


@db_app.command("status")
@friendly
def db_status(db: DbOption = None) -> None:
    """Which schema revision the database is at, and which the code expects (exit 1 if they differ)."""
    with _database(db) as database:
        current, head = database.schema_status()
    console.print(f"{database.safe_url}: at {current or 'nothing (empty)'}, code expects {head}")
    if current != head:
        raise typer.Exit(1)
