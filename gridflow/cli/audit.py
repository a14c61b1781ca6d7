"""``gridflow audit``: recompute the hash chain of every case's history."""

from __future__ import annotations

import typer

from .common import DbOption, console, err, friendly, wired

audit_app = typer.Typer(no_args_is_help=True, help="Check the hash-chained history.")


@audit_app.command("verify")
@friendly
def audit_verify(db: DbOption = None) -> None:
    """Recompute every case's hash chain; name the first broken link of each broken case (exit 1)."""
    from ..service.audit import verify_all

    gf = wired(db)
    checked = events = 0
    broken = []
    try:
        for report in verify_all(gf.services):
            checked += 1
            events += report.events
            if not report.ok:
                broken.append(report)
                err.print(f"[red]BROKEN[/] {report.number}: event {report.broken_seq}: {report.reason}")
    finally:
        gf.close()
    if broken:
        err.print(f"{len(broken)} of {checked} case(s) have a broken history chain")
        raise typer.Exit(1)
    console.print(f"[green]ok[/]: {checked} case(s), {events} event(s), every chain intact")
