"""``gridflow report``: the figures a supervisor publishes, in the terminal or as files."""

from __future__ import annotations

from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DbOption, console, fail, friendly, wired

report_app = typer.Typer(no_args_is_help=True, help="Reports: 三率 per unit over a period.")


class Format(str, Enum):
    table = "table"
    csv = "csv"
    html = "html"
    png = "png"


def _day(text: Optional[str], option: str) -> Optional[date]:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {text!r} is not a date (YYYY-MM-DD)", 2) from None


@report_app.command("sla")
@friendly
def report_sla(
    date_from: Annotated[Optional[str], typer.Option("--from", help="first local day, YYYY-MM-DD")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="last local day (inclusive)")] = None,
    unit: Annotated[Optional[str], typer.Option(help="a unit's own figures and its area's")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv, html or png")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o",
                                                   help="file to write (csv/html/png); default: stdout "
                                                        "for csv and html, sla-report.png for png")] = None,
    db: DbOption = None,
) -> None:
    """三率 per unit (response, resolution, satisfaction) and the counters beside them, over local days
    (definitions: docs/three-rates.md)."""
    from ..service import reports
    from ..service.auth import Caller
    from ..service.stats import sla_stats

    lo, hi = _day(date_from, "--from"), _day(date_to, "--to")
    gf = wired(db)
    try:
        if unit is not None and gf.services.units.get(unit) is None:
            with gf.services.uow(write=False) as uow:
                gf.services.units.refresh(uow.session, force=True)
            if gf.services.units.get(unit) is None:
                raise fail(f"--unit {unit!r}: no such unit", 2)
        report = sla_stats(gf.services, Caller.operator(), unit, lo, hi)
    finally:
        gf.close()
    if fmt is Format.table:
        _print_table(report)
        return
    data: bytes = (reports.to_csv(report) if fmt is Format.csv else
                   reports.to_html(report, generated=date.today()).encode("utf-8") if fmt is Format.html else
                   reports.to_png(report))
    if output is None and fmt is Format.png:
        output = Path("sla-report.png")
    if output is None:
        typer.echo(data.decode("utf-8"), nl=False)
        return
    output.write_bytes(data)
    console.print(f"wrote {output} ({len(data):,} bytes, {len(report.units)} unit(s), "
                  f"{reports.period_label(report)})")


def _print_table(report) -> None:
    from rich.table import Table

    from ..service import reports

    heading = {key: zh for key, zh, _en in reports.COLUMNS}
    table = Table(title=f"三率 {reports.period_label(report)}", show_lines=False)
    for key in reports.TABLE_COLUMNS:
        table.add_column(heading[key], justify="left" if key == "name" else "right", no_wrap=True)
    for u in reports.rows_of(report):
        table.add_row(*(str(reports.cell(u, key)) for key in reports.TABLE_COLUMNS),
                      style="bold" if u.kind == "total" else None)
    console.print(table)
    if not report.units:
        console.print("no figures in this period")


@report_app.command("care-visits")
@friendly
def report_care_visits(
    month: Annotated[str, typer.Option("--month", help="the calendar month, YYYY-MM")],
    db: DbOption = None,
) -> None:
    """月探访率: people owed a visit and visited in a month, per street, community and grid, and who was
    missed (definitions: docs/care-visits.md)."""
    from rich.table import Table

    from ..service.auth import Caller
    from ..service.care import visit_rate

    gf = wired(db)
    try:
        report = visit_rate(gf.services, Caller.operator(), month)
    finally:
        gf.close()
    table = Table(title=f"月探访率 {report['month']}")
    for heading, justify in (("单位", "left"), ("层级", "left"), ("应探访", "right"), ("已探访", "right"),
                             ("探访率", "right")):
        table.add_column(heading, justify=justify, no_wrap=True)
    kinds = {"street": "街道", "community": "社区", "grid": "网格"}
    for u in report["units"]:
        table.add_row(u["name"], kinds[u["kind"]], str(u["owed"]), str(u["visited"]), _rate(u["rate"]))
    t = report["total"]
    table.add_row("合计", "", str(t["owed"]), str(t["visited"]), _rate(t["rate"]), style="bold")
    console.print(table)
    for p in report["missed"]:
        console.print(f"未探访 {p['register_id']} {p['name']}（{p['group_type']}）网格 {p['grid']} "
                      f"{p['case_number']}")


def _rate(rate) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"
