"""``gridflow care``: the care register (特殊群体台账), loaded from a CSV file (docs/care-visits.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import DbOption, console, fail, friendly, wired

care_app = typer.Typer(no_args_is_help=True, help="The care register: people under care and their visits.")


@care_app.command("load")
@friendly
def care_load(file: Annotated[Path, typer.Argument(help="CSV: register_id,name,id_number,phone,address,"
                                                        "group_type,grid,worker,frequency")],
              db: DbOption = None) -> None:
    """Register the people in FILE (UTF-8, a BOM allowed); each new person gets a special_care_visit case.
    Re-loading is idempotent by register_id (changed rows are updated). A file with any wrong row loads
    nothing: every problem is printed as ``file:line: message`` (exit code 1)."""
    from ..service.care import load_csv

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"{file}: cannot read it as UTF-8 text: {exc}", 1) from None
    gf = wired(db)
    try:
        with gf.services.uow(write=False) as uow:
            gf.services.units.refresh(uow.session, force=True)
        done = load_csv(gf.services, text, str(file))
    finally:
        gf.close()
    if done.errors:
        for line in done.errors:
            sys.stderr.write(line + "\n")
        raise fail(f"{file}: {len(done.errors)} problem(s), nothing was loaded", 1)
    console.print(f"{file}: {done.created} registered, {done.updated} updated, {done.unchanged} unchanged")
