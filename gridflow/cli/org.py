"""``gridflow org``: check and load the organisation files (units, grid polygons, addresses) and list the
organisation's recorded changes. Every problem is printed as ``FILE:LINE: [element] message`` (GeoJSON:
``FILE: [feature N (grid CODE)] message``)."""

from __future__ import annotations

import getpass
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Mapping, Optional

import typer

from .common import DbOption, console, err, friendly, local, print_problems, wired

org_app = typer.Typer(no_args_is_help=True,
                      help="The organisation (网格化管理): units, grids and addresses from files.")

FilesArg = Annotated[list[Path], typer.Argument(
    help="units (.yaml/.csv), grids (.geojson), addresses (.csv)")]


@org_app.command("validate")
@friendly
def org_validate(files: FilesArg) -> None:
    """Check the files together; exit 1 listing every problem."""
    from ..service.organisation import check_org_files

    with _problems_listed("fix them and run validate again"):
        plan = check_org_files(files)
    console.print(f"[green]ok[/] {_counts(plan.units.values())}, {len(plan.addresses)} address(es)")


@org_app.command("load")
@friendly
def org_load(files: FilesArg, db: DbOption = None,
             actor: Annotated[Optional[str], typer.Option("--as", help="who loads (default: the OS user)")]
             = None) -> None:
    """Check the files and make them the organisation, in one transaction: nothing changes when anything
    is invalid; units gone from the files are retired, never deleted; the diff is recorded."""
    from ..service.organisation import load_org_files

    gf = wired(db)
    try:
        with _problems_listed("nothing was loaded"):
            change = load_org_files(gf.services, files, actor or f"cli:{getpass.getuser()}")
    finally:
        gf.close()
    if change is None:
        console.print("no change: the database already holds this organisation")
        return
    console.print(f"loaded: change #{change.id} — {change.summary}")
    _print_diff(change.diff)


@org_app.command("changes")
@friendly
def org_changes(db: DbOption = None,
                limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 20) -> None:
    """The organisation's recorded changes: who, when, from which files, what."""
    from ..service.organisation import list_org_changes

    gf = wired(db)
    try:
        changes = list_org_changes(gf.services, limit)
    finally:
        gf.close()
    if not changes:
        console.print("no organisation change recorded")
    for c in changes:
        console.print(f"[b]#{c.id}[/] {local(c.at)}  {c.actor}  {c.summary}  [dim]{c.source}[/]")
        _print_diff(c.diff, indent="    ")


@contextmanager
def _problems_listed(outcome_if_bad: str) -> Iterator[None]:
    from .. import DefinitionError

    try:
        yield
    except DefinitionError as exc:
        print_problems(exc.problems)
        err.print(f"{len(exc.problems)} problem(s) in the organisation files: {outcome_if_bad}")
        raise typer.Exit(1) from None


def _counts(units: Any) -> str:
    kinds: dict[str, int] = {}
    for u in units:
        kinds[u.kind] = kinds.get(u.kind, 0) + 1
    return ", ".join(f"{n} {k}(s)" for k, n in kinds.items())


def _print_diff(diff: Mapping[str, Any], indent: str = "  ", limit: int = 12) -> None:
    for key in ("added", "renamed", "moved", "reshaped", "retired", "restored"):
        entries = diff.get(key) or []
        for e in entries[:limit]:
            console.print(f"{indent}{key:<9} {_entry(key, e)}")
        if len(entries) > limit:
            console.print(f"{indent}{key:<9} … and {len(entries) - limit} more")


def _entry(key: str, e: Mapping[str, Any]) -> str:
    if key in ("renamed", "moved"):
        return f"{e['code']}: {e.get('from')} → {e.get('to')}"
    return f"{e['code']} {e.get('name', '')}".rstrip()
