"""``gridflow stats``: keep the statistical facts (三率) in step with history."""

from __future__ import annotations

import typer

from .common import DbOption, console, friendly, wired

stats_app = typer.Typer(no_args_is_help=True, help="Statistics (三率) kept as facts derived from history.")


@stats_app.command("rebuild")
@friendly
def stats_rebuild(db: DbOption = None) -> None:
    """Recompute the facts table from every case's history and the daily summary (unit_day_stats) from the
    facts, in one transaction (after upgrading a database that has history, or after the definitions
    changed); print what was counted."""
    from ..service.stats import rebuild_facts

    gf = wired(db)
    try:
        done = rebuild_facts(gf.services)
    finally:
        gf.close()
    console.print(f"rebuilt: {done.cases} case(s), {done.events} history event(s) -> {done.facts} fact(s), "
                  f"{done.summary_rows} summary row(s) (day × unit × area)")
    for kind, n in done.by_kind.items():
        console.print(f"  {kind:<22} {n}")
