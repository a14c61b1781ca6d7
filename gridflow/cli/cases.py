"""``gridflow cases show``: one case as an operator sees it — state, deadlines explained, timeline."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.panel import Panel

from .common import DbOption, console, friendly, local, local_iso, wired, working

cases_app = typer.Typer(no_args_is_help=True, help="Look at cases.")

LIGHTS = {"green": "[green]● green[/]", "yellow": "[yellow]● yellow[/]", "red": "[red]● red[/]", "none": "○"}


@cases_app.command("show")
@friendly
def cases_show(number: Annotated[str, typer.Argument(help="Case number, e.g. GF-2026-000001")],
               db: DbOption = None) -> None:
    """A case, its deadlines explained, and its timeline."""
    from ..service.auth import Caller
    from ..service.case_view import get_case, history

    gf = wired(db)
    try:
        caller = Caller.operator()
        case = get_case(gf.services, caller, number)
        events = history(gf.services, caller, number)
    finally:
        gf.close()
    console.print(Panel(_head(case), border_style="cyan"))
    if case.deadlines:
        lines = [_deadline_line(d) for d in case.deadlines]
        console.print(Panel("\n".join(lines), title="deadlines: why it is, or is not, overdue"))
    console.print("[b]timeline[/] (Asia/Shanghai)")
    for e in events:
        console.print(f"{e.seq:>3} {local(e.at)}  {_timeline_entry(e.type, e.data)}  "
                      f"[dim]{e.actor} ({e.role}) {e.hash[:8]}[/]")


def _light(light: str) -> str:
    return LIGHTS.get(light, light)


def _head(case) -> str:
    escalation = f"{case.escalation_level}{' → ' + case.escalation_unit if case.escalation_unit else ''}"
    return (f"[b]{case.number}[/] {case.title}  {case.workflow}@{case.workflow_version}\n"
            f"state [b]{case.state_label}[/] ({case.state}, stage {case.stage})  holder {case.holder_unit}  "
            f"escalation level {escalation}{'  [yellow]督办[/]' if case.supervised else ''}\n"
            f"SLA {_light(case.sla.light)}  left {working(case.sla.left_s)} (working time)"
            f"  reported {local(case.opened_at)}  version {case.version}")


def _deadline_line(d: dict[str, Any]) -> str:
    extra = f", {len(d['pauses'])} pause(s)" if d["pauses"] else ""
    extra += f", {len(d['extensions'])} extension(s)" if d["extensions"] else ""
    return (f"{_light(d['light'])} [b]{d['label']}[/] {d['duration']} on the "
            f"{d['calendar'].get('name', '')} calendar, {d['status']}: started {local_iso(d['started_at'])}, "
            f"due {local_iso(d['current_due'])} (originally {local_iso(d['original_due'])}); "
            f"used {working(d['used_s'])} of {working(d['allowed_s'])} working time{extra}")


def _timeline_entry(kind: str, d: dict[str, Any]) -> str:
    """One event, ``d`` its data, as a short line of its own kind."""
    timer = d.get("timer")
    if kind == "ActionTaken":
        payload = ", ".join(f"{k}={v}" for k, v in (d.get("payload") or {}).items())
        moved = f"[b]{d.get('action')}[/] {d.get('from_state')} → {d.get('to_state')}"
        return moved + (f" ({payload})" if payload else "")
    if kind == "CaseReported":
        p = d.get("payload") or {}
        return (f"[b]reported[/] in {d.get('origin_unit')} "
                f"({p.get('category', '')}, via {p.get('channel', '')})")
    if kind == "DeadlineStarted":
        return f"deadline {timer} ({d.get('duration')}, {d.get('calendar')}) due {local_iso(d.get('due_at'))}"
    if kind == "DeadlineStopped":
        met = "met" if d.get("met") else "[red]missed[/]"
        used, allowed = working(d.get("used_s")), working(d.get("allowed_s"))
        return f"deadline {timer} stopped: {met}, used {used} of {allowed}"
    if kind == "DeadlineWarned":
        return f"[yellow]deadline {timer} warned[/] (due {local_iso(d.get('due_at'))})"
    if kind == "DeadlineBreached":
        return f"[red]deadline {timer} breached[/] (#{d.get('breach')}, due {local_iso(d.get('due_at'))})"
    if kind == "DeadlineExtended":
        return f"deadline {timer} extended by {d.get('by')}: due {local_iso(d.get('due_at'))}"
    if kind in ("DeadlinePaused", "DeadlineResumed"):
        return f"deadline {timer} {kind.removeprefix('Deadline').lower()}, {working(d.get('left_s'))} left"
    if kind == "CaseEscalated":
        return f"[red]escalated[/] {d.get('from_level')} → {d.get('to_level')} ({d.get('reason')})"
    if kind == "EscalationRouted":
        return f"escalation routed to {d.get('unit') or 'no unit'}"
    if kind == "CaseAssigned":
        return f"assigned {d.get('from_unit')} → {d.get('to_unit')}"
    if kind == "CaseClosed":
        return f"[b]closed[/]: {d.get('outcome')}"
    if kind == "CaseSupervised":
        return f"[yellow]督办 supervised[/] ({d.get('reason')})"
    return kind + " " + ", ".join(f"{k}={v}" for k, v in d.items())
