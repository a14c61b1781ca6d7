"""``gridflow workflows``: validate, list and draw definitions (no database); migrate open cases."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import DbOption, console, err, fail, friendly, print_problems, settings, wired

workflows_app = typer.Typer(no_args_is_help=True,
                            help="Validate, list, draw and migrate workflow definitions.")


@workflows_app.command("validate")
def workflows_validate(files: Annotated[list[Path], typer.Argument(help="YAML definitions")]) -> None:
    """Check definitions; every problem is printed as FILE:LINE: [element] message."""
    from .. import DefinitionError
    from ..bootstrap import load_definition

    config = settings()
    bad = 0
    for path in files:
        try:
            defn = load_definition(path, config)
        except DefinitionError as exc:
            bad += 1
            print_problems(exc.problems)
            continue
        console.print(f"[green]ok[/] {path}: {defn.key} — {len(defn.states)} states, "
                      f"{len(defn.actions)} actions")
    if bad:
        err.print(f"{bad} of {len(files)} file(s) invalid")
        raise typer.Exit(1)


@workflows_app.command("list")
@friendly
def workflows_list() -> None:
    """The workflows this installation knows (shipped, plus GRIDFLOW_WORKFLOWS_DIR)."""
    from ..bootstrap import build_catalog

    catalog = build_catalog(settings())
    table = Table(title="workflows")
    table.add_column("name", no_wrap=True)
    for col in ("versions", "label", "states", "actions", "source"):
        table.add_column(col)
    for name in catalog.names():
        d = catalog.newest(name)
        table.add_row(name, ", ".join(map(str, catalog.versions(name))), f"{d.label.zh} / {d.label.en}",
                      str(len(d.states)), str(len(d.actions)), Path(d.source).name)
    console.print(table)


@workflows_app.command("draw")
@friendly
def workflows_draw(
    name: Annotated[str, typer.Argument(help="A workflow name, or a YAML file")],
    lang: Annotated[str, typer.Option("--lang", help="zh or en labels")] = "zh",
    version: Annotated[Optional[int], typer.Option(help="Default: the newest")] = None,
) -> None:
    """Print a workflow as a Mermaid state diagram (paste it into any Mermaid viewer)."""
    from ..bootstrap import build_catalog
    from ..service.diagrams import diagram

    if lang not in ("zh", "en"):
        raise fail(f"--lang must be zh or en, not {lang!r}", 2)
    catalog = build_catalog(settings())
    if name.endswith((".yaml", ".yml")) or Path(name).is_file():
        if not Path(name).is_file():
            raise fail(f"{name}: no such file")
        defn = catalog.add_file(name)
        name, version = defn.name, defn.version
    _, text = diagram(catalog, name, version, lang)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@workflows_app.command("migrate")
@friendly
def workflows_migrate(
    name: Annotated[str, typer.Argument(help="Workflow name")],
    to: Annotated[int, typer.Option("--to", help="Target version")],
    mapping: Annotated[Optional[list[str]],
                       typer.Option("--map", help="old=new state mapping (repeatable)")] = None,
    db: DbOption = None,
) -> None:
    """Move the open cases of a workflow to another version, mapping states; recorded in each case's history."""  # noqa: E501 (one line of --help)
    from .. import Actor
    from ..service.migration import migrate_cases

    state_map: dict[str, str] = {}
    for item in mapping or []:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise fail(f"--map {item!r}: expected OLD=NEW", 2)
        state_map[old.strip()] = new.strip()
    gf = wired(db)
    try:
        moved = migrate_cases(gf.services, name, to, state_map, Actor("cli", "admin"))
    finally:
        gf.close()
    console.print(f"moved {moved} open case(s) of {name} to version {to}")
