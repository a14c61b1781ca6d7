"""What every command group shares: the consoles, the one error path, settings, and how times are shown.

gridflow itself is imported inside the functions, so ``gridflow --help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import functools
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Optional

import typer
from rich.console import Console

from .. import LOCAL_ZONE

LOCAL = LOCAL_ZONE
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DbOption = Annotated[Optional[Path],
                     typer.Option("--db", help="SQLite file (default: GRIDFLOW_DATABASE_URL)")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; the caller raises the returned exit."""
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def print_problems(problems: Iterable[object]) -> None:
    """One ``file:line: [element] message`` per line, unwrapped, for editors and CI logs."""
    for p in problems:
        sys.stderr.write(f"{p}\n")
    sys.stderr.flush()


def friendly(fn: Callable) -> Callable:
    """Turn gridflow's named errors and bad settings into one message and exit code 1 (2 for settings)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from .. import DefinitionError, GridflowError

        try:
            return fn(*args, **kwargs)
        except DefinitionError as exc:
            print_problems(exc.problems)
            raise typer.Exit(1) from None
        except GridflowError as exc:
            raise fail(exc.message) from None
        except ValidationError as exc:
            lines = "; ".join(f"GRIDFLOW_{'_'.join(map(str, e['loc'])).upper() or 'SETTINGS'}: {e['msg']}"
                              for e in exc.errors())
            raise fail(f"bad settings: {lines}", 2) from None

    return wrapper


def settings(**overrides: Any):
    """The settings from the environment (GRIDFLOW_*), with the options the user gave on top."""
    from ..settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def db_url(db: Optional[Path]) -> Optional[str]:
    return f"sqlite:///{db}" if db is not None else None


def wired(db: Optional[Path] = None):
    """gridflow on an existing database, without the demo seed or a timer runner (maintenance commands)."""
    from ..bootstrap import bootstrap

    return bootstrap(settings(database_url=db_url(db)), create_schema=False, runner="none", seed=False)


def local(at: datetime | None) -> str:
    """A moment as the unit's wall clock shows it (Asia/Shanghai), to the minute."""
    return at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if at else "—"


def local_iso(text: str | None) -> str:
    """An ISO timestamp from an event or a deadline document, as :func:`local` shows it."""
    return local(datetime.fromisoformat(text)) if text else "—"


def working(seconds: float | None) -> str:
    """A span of working time as ``7h30m`` (negative when overdue)."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    return f"{sign}{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
