"""``gridflow catalog``: validate event catalogue files and list the catalogue (no database)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, err, fail, friendly, print_problems, settings

catalog_app = typer.Typer(no_args_is_help=True, help="Validate and list the event catalogue (事项目录).")
KINDS = ("component", "event", "governance", "hotline")


@catalog_app.command("validate")
def catalog_validate(files: Annotated[list[Path], typer.Argument(help="catalogue YAML files")]) -> None:
    """Check catalogue files as GRIDFLOW_CATEGORIES would load them — in order, over the shipped catalogue,
    against this installation's workflows; every problem is printed as FILE:LINE: [element] message."""
    from ..bootstrap import build_catalog
    from ..service.categories import CatalogueInvalid, build_categories

    try:
        categories = build_categories(build_catalog(settings()), files)
    except CatalogueInvalid as exc:
        print_problems(exc.problems)
        bad = len({p.file for p in exc.problems})
        err.print(f"{len(exc.problems)} problem(s) in {bad} file(s)")
        raise typer.Exit(1) from None
    for path in files:
        own = sum(1 for c in categories.entries.values() if c.source == str(path))
        console.print(f"[green]ok[/] {path}: {own} categories defined or last changed here")
    console.print(f"{len(categories)} categories in all")


@catalog_app.command("list")
@friendly
def catalog_list(
    kind: Annotated[Optional[str], typer.Option(help="component, event, governance or hotline")] = None,
    workflow: Annotated[Optional[str], typer.Option(help="only those defaulting to this workflow")] = None,
) -> None:
    """The categories this installation files reports against (shipped, plus GRIDFLOW_CATEGORIES)."""
    from ..bootstrap import build_catalog, build_event_catalogue

    if kind is not None and kind not in KINDS:
        raise fail(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}", 2)
    config = settings()
    categories = build_event_catalogue(config, build_catalog(config))
    # One line per category, tab-separated (greppable, never wrapped): code, kind, labels, urgency, default
    # workflow, limits, assignment order.
    for c in categories.select(kind, workflow):
        limits = ",".join(f"{k}={v}" for k, v in c.limit_texts().items()) or "-"
        sys.stdout.write("\t".join((c.code, c.kind, f"{c.label.zh} / {c.label.en}", c.urgency, c.workflow,
                                    limits, ">".join(c.assignment))) + "\n")
