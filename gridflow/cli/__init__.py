"""The ``gridflow`` command: serve the API, run the demo city, manage workflows, the database and the audit.

Each command parses its options, wires gridflow through ``bootstrap`` and calls
the service; errors come out as one clear message and a non-zero exit code.
One module per command group; this one only assembles them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .audit import audit_app
from .care import care_app
from .cases import cases_app
from .catalog import catalog_app
from .common import console
from .db import db_app
from .demo import demo
from .org import org_app
from .processes import scheduler, worker
from .serve import serve
from .report import report_app
from .stats import stats_app
from .users import users_app
from .workflows import workflows_app

__all__ = ["app", "main"]

app = typer.Typer(name="gridflow", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="gridflow — community case dispatch & escalation (网格化治理 案件流转).")
app.add_typer(workflows_app, name="workflows")
app.add_typer(catalog_app, name="catalog")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(cases_app, name="cases")
app.add_typer(stats_app, name="stats")
app.add_typer(report_app, name="report")
app.add_typer(org_app, name="org")
app.add_typer(care_app, name="care")
app.add_typer(users_app, name="users")


def _version(value: bool) -> None:
    if value:
        console.print(f"gridflow {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                       help="Print the version.")] = False) -> None:
    """gridflow — community case dispatch & escalation."""


app.command()(serve)
app.command()(demo)
app.command()(scheduler)
app.command()(worker)


def main() -> None:
    app()
