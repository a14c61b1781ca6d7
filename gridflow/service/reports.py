"""The SLA report (三率) as a supervisor publishes it: a CSV a spreadsheet opens with its Chinese intact,
an HTML page with its chart drawn in, a PNG chart. Built from :func:`gridflow.service.stats.sla_stats`;
the figures carry no personal data. Nothing a page loads comes from outside it (isolated networks).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from .exports import safe_cell
from .stats import FIELDS, SlaReport, UnitStats

#: (key, Chinese heading, English heading) of the report's columns, in order.
COLUMNS = (
    ("unit", "单位编码", "unit"), ("name", "单位", "name"), ("receipts", "派单数", "dispatches"),
    ("responded_on_time", "按时响应", "responded on time"), ("response_rate", "响应率", "response rate"),
    ("received", "受理数", "received"), ("resolved", "解决数", "resolved"),
    ("resolution_rate", "解决率", "resolution rate"), ("rated", "评价数", "rated"),
    ("satisfaction_rate", "满意率", "satisfaction rate"), ("breaches", "超时", "breaches"),
    ("escalations", "升级", "escalations"), ("returns", "退单", "returns"),
    ("extensions", "延期", "extensions"), ("supervision_orders", "督办", "supervision orders"),
)
#: The columns of the terminal table (fits 80 columns; the files have every figure).
TABLE_COLUMNS = ("name", "receipts", "response_rate", "received", "resolution_rate", "rated",
                 "satisfaction_rate", "breaches", "escalations")
RATES = (("response_rate", "响应率"), ("resolution_rate", "解决率"), ("satisfaction_rate", "满意率"))
#: Fonts with Chinese glyphs, the first one installed is used for charts (else units show by code).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
             "WenQuanYi Zen Hei", "AR PL UMing CN", "Droid Sans Fallback")


def period_label(report: SlaReport) -> str:
    if report.date_from is None and report.date_to is None:
        return "全部 (all time)"
    lo = report.date_from.isoformat() if report.date_from else "…"
    hi = report.date_to.isoformat() if report.date_to else "…"
    return f"{lo} — {hi}"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def rows_of(report: SlaReport) -> list[UnitStats]:
    """The units, then the total."""
    return [*report.units, report.total]


def to_csv(report: SlaReport) -> bytes:
    """Every figure of every unit and the total (all counters, then the rates), UTF-8 with a BOM so that
    spreadsheet programs read the Chinese; formula-looking cells neutralised."""
    buf = io.StringIO()
    keys = ["unit", "name", "kind", *FIELDS, "not_accepted", "response_rate", "resolution_rate",
            "satisfaction_rate"]
    writer = csv.writer(buf)
    writer.writerow(["period_from", "period_to", *keys])
    period = [report.date_from.isoformat() if report.date_from else "",
              report.date_to.isoformat() if report.date_to else ""]
    for u in rows_of(report):
        values = u.as_dict()
        writer.writerow(period + [safe_cell("" if values[k] is None else values[k]) for k in keys])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def chart_font() -> str | None:
    """The first installed font that draws Chinese, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _chart(report: SlaReport, fmt: str) -> bytes:
    """A bar chart of the three rates per unit (units without any rate left out), as PNG or SVG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    units = [u for u in report.units if any(getattr(u, key) is not None for key, _ in RATES)]
    font = chart_font()
    with matplotlib.rc_context({"font.family": [font, "DejaVu Sans"]} if font else {}):
        fig = Figure(figsize=(max(6.0, 0.9 * len(units) + 2), 4.2), dpi=100)
        ax = fig.subplots()
        width = 0.8 / len(RATES)
        for i, (key, zh) in enumerate(RATES):
            xs = [n + (i - 1) * width for n in range(len(units))]
            ax.bar(xs, [(getattr(u, key) or 0) * 100 for u in units], width,
                   label=zh if font else key.replace("_", " "))
        ax.set_xticks(range(len(units)), [(u.name if font else u.unit or "—") for u in units],
                      rotation=30, ha="right")
        ax.set_ylim(0, 105)
        ax.set_ylabel("%")
        ax.set_title(("三率 " if font else "SLA rates ") + period_label(report))
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
    return buf.getvalue()


def to_png(report: SlaReport) -> bytes:
    return _chart(report, "png")


def to_svg(report: SlaReport) -> str:
    """The chart as SVG markup to draw into a page (no XML prolog or doctype)."""
    text = _chart(report, "svg").decode("utf-8")
    return text[text.index("<svg"):]


def to_html(report: SlaReport, *, generated: date | None = None) -> str:
    """A self-contained page: the table of figures and the chart (inline SVG), no outside asset."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("gridflow.service", "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["percent"] = percent
    return env.get_template("sla_report.html").render(
        report=report, rows=rows_of(report), columns=COLUMNS, rates={k for k, _ in RATES},
        period=period_label(report), chart=to_svg(report) if report.units else "", generated=generated)


def cell(u: UnitStats, key: str) -> Any:
    """A column's value as shown in tables (rates as percentages)."""
    if key in ("unit", "name"):
        return getattr(u, key) or "—"
    value = getattr(u, key)
    return percent(value) if key.endswith("_rate") else value
