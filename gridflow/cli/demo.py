"""``gridflow demo``: the demo district simulated for N days on a manual clock, then its SLA figures."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.panel import Panel
from rich import box
from rich.table import Table

from .common import LOCAL, console, fail, friendly, settings


@friendly
def demo(
    days: Annotated[int, typer.Option(min=1, max=365, help="Simulated days")] = 10,
    cases_per_day: Annotated[float, typer.Option(min=1, max=2000, help="Average new cases a day")] = 20.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same city)")] = 7,
    db: Annotated[Optional[Path],
                  typer.Option("--db", help="Keep the simulated city in this SQLite file")] = None,
) -> None:
    """Simulate the demo district for N days: arrivals, triage, dispatch, late and on-time answers,
    ratings, reviews and escalations; then the SLA figures per unit."""
    from .. import ManualClock
    from ..bootstrap import bootstrap
    from ..demo.city import DemoConfig

    config = DemoConfig(days=days, cases_per_day=cases_per_day, seed=seed)
    with tempfile.TemporaryDirectory(prefix="gridflow-demo-") as tmp:
        path = db or Path(tmp) / "demo.db"
        if db is not None and db.exists():
            raise fail(f"{db} already exists; the demo starts a fresh city (give a new file)")
        clock = ManualClock(config.start)
        gf = bootstrap(settings(database_url=f"sqlite:///{path}", seed_demo=True, environment="development"),
                       clock, runner="inline", create_schema=True, seed=True)
        try:
            result = _simulate(gf, clock, config)
            _report(gf, result)
        finally:
            gf.close()
        if db is not None:
            sample = result.escalated_cases[0] if result.escalated_cases else "GF-…"
            console.print(f"the simulated city is kept in {db}; look at a case:")
            console.print(f"  [b]gridflow cases show {sample} --db {db}[/]", soft_wrap=True)
    if not result.complete:
        raise fail("the simulation did not reach every stage and an escalation; try more --days")


def _simulate(gf, clock, config):
    """Run the simulation under a progress bar that shows the simulated time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..demo.city import run_demo

    with Progress(TextColumn("[b]simulating[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("", total=1)

        def progress(done: int, total: int) -> None:
            if done % 4 == 0 or done == total:
                bar.update(task, completed=done, total=total,
                           description=clock.now().astimezone(LOCAL).strftime("%m-%d %H:%M"))

        return run_demo(gf.services, clock, gf.runner, config, progress)


def _report(gf, result) -> None:
    from ..service.auth import Caller
    from ..service.case_view import history

    console.print(f"\n[b]{result.config.days} days[/], {result.cases} cases reported, "
                  f"{result.actions} actions, "
                  f"{result.timers_fired} deadline timers fired, {result.escalations} escalations "
                  f"({len(result.escalated_cases)} cases)\n")
    stages = Table(title="what happened, stage by stage")
    stages.add_column("stage")
    stages.add_column("what happened (count)")
    for _, label, seen in result.coverage():
        stages.add_row(label, ", ".join(f"{k} {v}" for k, v in seen.items()) or "[red]nothing[/]")
    console.print(stages)
    _stats_table(result.stats, "SLA per responsible unit (三率)")
    if result.care is not None:
        _care_table(result.care)
    if result.escalated_cases:
        number = result.escalated_cases[0]
        events = history(gf.services, Caller.operator(), number)
        until = result.simulated_until  # not what closing the care month fired afterwards
        shown = ("CaseReported", "ActionTaken", "DeadlineBreached", "CaseEscalated", "CaseSupervised",
                 "CaseClosed")
        line = " → ".join(_event_label(e.type, e.data) for e in events
                          if e.type in shown and (until is None or e.at <= until))
        console.print(Panel(line, title=f"an escalated case: {number}", border_style="red"))


def _care_table(rate: dict[str, Any]) -> None:
    """The care register's month, closed: visited / owed per community, and who was missed."""
    table = Table(title=f"care visits {rate['month']} (月探访率)", box=box.SIMPLE_HEAD)
    for col, justify in (("unit", "left"), ("应探访", "right"), ("已探访", "right"), ("探访率", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for u in rate["units"]:
        if u["kind"] != "grid":
            table.add_row(u["name"], str(u["owed"]), str(u["visited"]), _rate(u["rate"]))
    t = rate["total"]
    table.add_row("合计 total", str(t["owed"]), str(t["visited"]), _rate(t["rate"]), style="bold")
    console.print(table)
    for p in rate["missed"]:
        console.print(f"[red]missed[/] {p['register_id']} {p['name']}（{p['group_type']}）{p['case_number']}")


def _event_label(kind: str, data: dict[str, Any]) -> str:
    if kind == "ActionTaken":
        return data.get("action", "?")
    if kind == "DeadlineBreached":
        return f"[red]{data.get('timer')} breached[/]"
    if kind == "CaseEscalated":
        return f"[red]escalated to {data.get('to_level')}[/]"
    others = {"CaseReported": "reported", "CaseSupervised": "[yellow]督办[/]", "CaseClosed": "closed"}
    return others.get(kind, kind)


def _rate(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "—"


def _stats_table(report, title: str) -> None:
    """The three rates per unit, from history (docs/three-rates.md), with what they are made of."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    # Eleven columns with CJK headers (two columns a character): a light box so that they fit 80.
    table.add_column("unit", no_wrap=True)
    cols = (("派单", "receipts"), ("按时", "responded_on_time"), ("收案", "received"),
            ("解决", "resolved"), ("评价", "rated"), ("重办", "rework_rounds"), ("超时", "breaches"))
    for label, _ in cols:
        table.add_column(label, justify="right", no_wrap=True)
    for col in ("响应率", "解决率", "满意率"):
        table.add_column(col, justify="right", no_wrap=True)
    for u in [*report.units, report.total]:
        style = "bold" if u.kind == "total" else None
        table.add_row(u.name, *(str(getattr(u, name)) for _, name in cols),
                      _rate(u.response_rate), _rate(u.resolution_rate), _rate(u.satisfaction_rate),
                      style=style)
    console.print(table)
