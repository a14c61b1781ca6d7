"""The ``gridflow`` command: serve the API, run the demo city, manage workflows, the database and the audit.

Each command parses its options, wires gridflow through ``bootstrap`` and calls
the service; errors come out as one clear message and a non-zero exit code.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from . import __version__

from .engine.calendar import LOCAL_ZONE as LOCAL
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

app = typer.Typer(name="gridflow", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="gridflow — community case dispatch & escalation (网格化治理 案件流转).")
workflows_app = typer.Typer(no_args_is_help=True, help="Validate, list, draw and migrate workflow definitions.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
audit_app = typer.Typer(no_args_is_help=True, help="Check the hash-chained history.")
cases_app = typer.Typer(no_args_is_help=True, help="Look at cases.")
app.add_typer(workflows_app, name="workflows")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(cases_app, name="cases")

LIGHTS = {"green": "[green]● green[/]", "yellow": "[yellow]● yellow[/]", "red": "[red]● red[/]", "none": "○"}


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def friendly(fn: Callable) -> Callable:
    """Turn gridflow's named errors and bad settings into one message and exit code 1 (2 for settings)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from .engine.errors import DefinitionError, GridflowError

        try:
            return fn(*args, **kwargs)
        except DefinitionError as exc:
            _problems(exc.problems)
            raise typer.Exit(1) from None
        except GridflowError as exc:
            raise _fail(exc.message) from None
        except ValidationError as exc:
            lines = "; ".join(f"GRIDFLOW_{'_'.join(map(str, e['loc'])).upper() or 'SETTINGS'}: {e['msg']}"
                              for e in exc.errors())
            raise _fail(f"bad settings: {lines}", 2) from None

    return wrapper


def _problems(problems) -> None:
    """One ``file:line: [element] message`` per line, unwrapped, for editors and CI logs."""
    for p in problems:
        sys.stderr.write(f"{p}\n")
    sys.stderr.flush()


def _settings(**overrides: Any):
    from .settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _db_url(db: Optional[Path]) -> Optional[str]:
    return f"sqlite:///{db}" if db is not None else None


def _wired(db: Optional[Path] = None, **overrides: Any):
    """An app on an existing database, without the demo seed or a timer runner (maintenance commands)."""
    from .bootstrap import bootstrap

    return bootstrap(_settings(database_url=_db_url(db), **overrides), create_schema=False, runner="none",
                     seed=False)


def _local(at: datetime | None) -> str:
    return at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if at else "—"


def _working(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    return f"{sign}{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


DbOption = Annotated[Optional[Path], typer.Option("--db", help="SQLite file (default: GRIDFLOW_DATABASE_URL)")]


def _version(value: bool) -> None:
    if value:
        console.print(f"gridflow {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                       help="Print the version.")] = False) -> None:
    """gridflow — community case dispatch & escalation."""


# --- serve --------------------------------------------------------------------------------------

@app.command()
@friendly
def serve(
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on [GRIDFLOW_HOST]")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port [GRIDFLOW_PORT]")] = None,
    db: DbOption = None,
    seed: Annotated[Optional[bool], typer.Option("--seed/--no-seed", help="Seed the demo organisation")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (production; timers need Celery)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the API and the timer runner. Embedded default: a SQLite file here, the demo organisation seeded."""
    import uvicorn

    settings = _settings(host=host, port=port, database_url=_db_url(db), seed_demo=seed)
    if workers > 1:
        if settings.is_sqlite or not settings.broker_url:
            raise _fail("several workers need PostgreSQL and a broker (GRIDFLOW_DATABASE_URL, GRIDFLOW_BROKER_URL);"
                        " see docs/at-scale.md")
        for key, value in (("HOST", host), ("PORT", port), ("DATABASE_URL", _db_url(db)), ("SEED_DEMO", seed)):
            if value is not None:
                os.environ[f"GRIDFLOW_{key}"] = str(value)
        uvicorn.run("gridflow.api.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level=log_level)
        return
    from .api.app import create_app
    from .bootstrap import bootstrap
    from .logging import configure_logging, wants_json

    configure_logging(settings, role="api")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin chatter says nothing to an operator
    gf = bootstrap(settings)
    _banner(gf)
    # In JSON mode uvicorn's own records go through our handler too, one format for the log shipper.
    extra = {"log_config": None} if wants_json(settings) else {}
    uvicorn.run(create_app(gf), host=settings.host, port=settings.port, log_level=log_level, **extra)


def _banner(gf) -> None:
    from .service.admin import user_for_token
    from .service.seed import USERS

    s = gf.settings
    base = f"http://{s.host}:{s.port}"
    runner = getattr(gf.runner, "kind", None) or "none (Celery workers fire timers)"
    console.print(Panel.fit(
        f"[b]gridflow {__version__}[/]  database: {gf.services.db.safe_url}  timer runner: {runner}\n"
        f"console  {base}/\nAPI docs {base}/docs\nhealth   {base}/healthz\nmetrics  {base}/metrics",
        title="gridflow serve", border_style="cyan"))
    if not s.seed_demo:
        return
    table = Table(title="demo API keys (X-API-Key or Authorization: Bearer)", show_lines=False)
    for col in ("token", "role", "user", "unit"):
        table.add_column(col)
    for uid, name, role, unit, token in USERS:
        if user_for_token(gf.services, token) is not None:
            table.add_row(token, role, f"{uid} {name}", unit)
    if table.row_count:
        console.print(table)
        console.print(f"try:  curl -H 'X-API-Key: demo-community' {base}/api/v1/worklist")


# --- demo ---------------------------------------------------------------------------------------

@app.command()
@friendly
def demo(
    days: Annotated[int, typer.Option(min=1, max=365, help="Simulated days")] = 10,
    cases_per_day: Annotated[float, typer.Option(min=1, max=2000, help="Average new cases a day")] = 20.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same city)")] = 7,
    db: Annotated[Optional[Path], typer.Option("--db", help="Keep the simulated city in this SQLite file")] = None,
) -> None:
    """Simulate the demo district for N days: arrivals, triage, dispatch, late and on-time answers,
    ratings, reviews and escalations; then the SLA figures per unit."""
    import tempfile

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .bootstrap import bootstrap
    from .engine.clock import ManualClock
    from .service.demo import DemoConfig, run_demo

    config = DemoConfig(days=days, cases_per_day=cases_per_day, seed=seed)
    with tempfile.TemporaryDirectory(prefix="gridflow-demo-") as tmp:
        path = db or Path(tmp) / "demo.db"
        if db is not None and db.exists():
            raise _fail(f"{db} already exists; the demo starts a fresh city (give a new file)")
        clock = ManualClock(config.start)
        gf = bootstrap(_settings(database_url=f"sqlite:///{path}", seed_demo=True, environment="development"),
                       clock, runner="inline", create_schema=True, seed=True)
        try:
            with Progress(TextColumn("[b]simulating[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=False) as bar:
                task = bar.add_task("", total=1)

                def progress(done: int, total: int) -> None:
                    if done % 4 == 0 or done == total:
                        bar.update(task, completed=done, total=total,
                                   description=clock.now().astimezone(LOCAL).strftime("%m-%d %H:%M"))

                result = run_demo(gf.services, clock, gf.runner, config, progress)
            _demo_report(gf, result)
        finally:
            gf.close()
        if db is not None:
            sample = result.escalated_cases[0] if result.escalated_cases else "GF-…"
            console.print(f"the simulated city is kept in {db}; look at a case:")
            console.print(f"  [b]gridflow cases show {sample} --db {db}[/]", soft_wrap=True)
    if not result.complete:
        raise _fail("the simulation did not reach every stage and an escalation; try more --days")


def _demo_report(gf, result) -> None:
    from .service.privacy import Caller
    from .service.queries import history

    console.print(f"\n[b]{result.config.days} days[/], {result.cases} cases reported, {result.actions} actions, "
                  f"{result.timers_fired} deadline timers fired, {result.escalations} escalations "
                  f"({len(result.escalated_cases)} cases)\n")
    stages = Table(title="what happened, stage by stage")
    stages.add_column("stage")
    stages.add_column("what happened (count)")
    for _, label, seen in result.coverage():
        stages.add_row(label, ", ".join(f"{k} {v}" for k, v in seen.items()) or "[red]nothing[/]")
    console.print(stages)
    _stats_table(result.stats, "SLA per responsible unit (三率)")
    if result.escalated_cases:
        number = result.escalated_cases[0]
        events = history(gf.services, Caller.operator(), number)
        line = " → ".join(_event_label(e.type, e.data) for e in events
                          if e.type in ("CaseReported", "ActionTaken", "DeadlineBreached", "CaseEscalated",
                                        "CaseSupervised", "CaseClosed"))
        console.print(Panel(line, title=f"an escalated case: {number}", border_style="red"))


def _event_label(kind: str, data: dict[str, Any]) -> str:
    if kind == "ActionTaken":
        return data.get("action", "?")
    if kind == "DeadlineBreached":
        return f"[red]{data.get('timer')} breached[/]"
    if kind == "CaseEscalated":
        return f"[red]escalated to {data.get('to_level')}[/]"
    return {"CaseReported": "reported", "CaseSupervised": "[yellow]督办[/]", "CaseClosed": "closed"}.get(kind, kind)


def _rate(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "—"


def _stats_table(report, title: str) -> None:
    table = Table(title=title)
    table.add_column("unit", no_wrap=True)
    for col in ("recv", "on time", "late", "escal.", "响应率", "解决率", "满意率"):
        table.add_column(col, justify="right")
    for u in [*report.units, report.total]:
        style = "bold" if u.kind == "total" else None
        table.add_row(u.name, str(u.received), str(u.on_time),
                      str(u.overdue), str(u.escalated), _rate(u.response_rate), _rate(u.resolution_rate),
                      _rate(u.satisfaction_rate), style=style)
    console.print(table)


# --- workflows ----------------------------------------------------------------------------------

def _calendars():
    from .engine.calendar import default_registry, load_overrides

    path = _settings().calendar_overrides
    return default_registry(load_overrides(path) if path else None)


def _catalog():
    """The shipped workflows plus GRIDFLOW_WORKFLOWS_DIR, without a database."""
    from .service.catalog import WorkflowCatalog

    catalog = WorkflowCatalog(_calendars())
    catalog.load_shipped()
    extra = _settings().workflows_dir
    if extra:
        catalog.add_directory(extra)
    return catalog


@workflows_app.command("validate")
def workflows_validate(files: Annotated[list[Path], typer.Argument(help="YAML definitions")]) -> None:
    """Check definitions; every problem is printed as FILE:LINE: [element] message."""
    from .engine.errors import DefinitionError
    from .engine.guards import default_guards
    from .engine.loader import load_file

    calendars = _calendars().names()
    bad = 0
    for path in files:
        try:
            defn = load_file(path, guards=default_guards(), calendars=calendars)
        except DefinitionError as exc:
            bad += 1
            _problems(exc.problems)
            continue
        console.print(f"[green]ok[/] {path}: {defn.key} — {len(defn.states)} states, {len(defn.actions)} actions")
    if bad:
        err.print(f"{bad} of {len(files)} file(s) invalid")
        raise typer.Exit(1)


@workflows_app.command("list")
@friendly
def workflows_list() -> None:
    """The workflows this installation knows (shipped, plus GRIDFLOW_WORKFLOWS_DIR)."""
    catalog = _catalog()
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
    from .service.queries import diagram

    if lang not in ("zh", "en"):
        raise _fail(f"--lang must be zh or en, not {lang!r}", 2)
    catalog = _catalog()
    if name.endswith((".yaml", ".yml")) or Path(name).is_file():
        if not Path(name).is_file():
            raise _fail(f"{name}: no such file")
        defn = catalog.add_file(name)
        name, version = defn.name, defn.version
    _, text = diagram(catalog, name, version, lang)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@workflows_app.command("migrate")
@friendly
def workflows_migrate(
    name: Annotated[str, typer.Argument(help="Workflow name")],
    to: Annotated[int, typer.Option("--to", help="Target version")],
    mapping: Annotated[Optional[list[str]], typer.Option("--map", help="old=new state mapping (repeatable)")] = None,
    db: DbOption = None,
) -> None:
    """Move the open cases of a workflow to another version, mapping states; recorded in each case's history."""
    from .engine.case import Actor
    from .service.cases import migrate_cases

    state_map: dict[str, str] = {}
    for item in mapping or []:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise _fail(f"--map {item!r}: expected OLD=NEW", 2)
        state_map[old.strip()] = new.strip()
    gf = _wired(db)
    try:
        moved = migrate_cases(gf.services, name, to, state_map, Actor("cli", "admin"))
    finally:
        gf.close()
    console.print(f"moved {moved} open case(s) of {name} to version {to}")


# --- database and audit -------------------------------------------------------------------------

@contextmanager
def _database(db: Optional[Path]):
    from .adapters.db import Database

    database = Database(_settings(database_url=_db_url(db)).database_url)
    try:
        yield database
    finally:
        database.dispose()


@db_app.command("upgrade")
@friendly
def db_upgrade(db: DbOption = None) -> None:
    """Create or upgrade the schema to the version this code expects."""
    with _database(db) as database:
        database.upgrade()
        current, head = database.schema_status()
    console.print(f"{database.safe_url}: schema at {current} (expected {head})")


@db_app.command("status")
@friendly
def db_status(db: DbOption = None) -> None:
    """Which schema revision the database is at, and which the code expects (exit 1 if they differ)."""
    with _database(db) as database:
        current, head = database.schema_status()
    console.print(f"{database.safe_url}: at {current or 'nothing (empty)'}, code expects {head}")
    if current != head:
        raise typer.Exit(1)


@audit_app.command("verify")
@friendly
def audit_verify(db: DbOption = None) -> None:
    """Recompute every case's hash chain; name the first broken link of each broken case (exit 1)."""
    from .service.audit import verify_all

    gf = _wired(db)
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


# --- cases --------------------------------------------------------------------------------------

@cases_app.command("show")
@friendly
def cases_show(number: Annotated[str, typer.Argument(help="Case number, e.g. GF-2026-000001")],
               db: DbOption = None) -> None:
    """A case, its deadlines explained, and its timeline."""
    from .service.privacy import Caller
    from .service.queries import get_case, history

    gf = _wired(db)
    try:
        caller = Caller.operator()
        case = get_case(gf.services, caller, number)
        events = history(gf.services, caller, number)
    finally:
        gf.close()
    head = (f"[b]{case.number}[/] {case.title}  {case.workflow}@{case.workflow_version}\n"
            f"state [b]{case.state_label}[/] ({case.state}, stage {case.stage})  holder {case.holder_unit}  "
            f"escalation level {case.escalation_level}{' → ' + case.escalation_unit if case.escalation_unit else ''}"
            f"{'  [yellow]督办[/]' if case.supervised else ''}\n"
            f"SLA {LIGHTS.get(case.sla.light, case.sla.light)}  left {_working(case.sla.left_s)} (working time)"
            f"  reported {_local(case.opened_at)}  version {case.version}")
    console.print(Panel(head, border_style="cyan"))
    if case.deadlines:
        lines = []
        for d in case.deadlines:
            extra = f", {len(d['pauses'])} pause(s)" if d["pauses"] else ""
            extra += f", {len(d['extensions'])} extension(s)" if d["extensions"] else ""
            lines.append(
                f"{LIGHTS.get(d['light'], d['light'])} [b]{d['label']}[/] {d['duration']} on the "
                f"{d['calendar'].get('name', '')} calendar, {d['status']}: started "
                f"{_local(datetime.fromisoformat(d['started_at']))}, due {_local(datetime.fromisoformat(d['current_due']))}"
                f" (originally {_local(datetime.fromisoformat(d['original_due']))}); used {_working(d['used_s'])} of "
                f"{_working(d['allowed_s'])} working time{extra}")
        console.print(Panel("\n".join(lines), title="deadlines: why it is, or is not, overdue"))
    console.print("[b]timeline[/] (Asia/Shanghai)")
    for e in events:
        console.print(f"{e.seq:>3} {_local(e.at)}  {_timeline_entry(e.type, e.data)}  "
                      f"[dim]{e.actor} ({e.role}) {e.hash[:8]}[/]")


def _timeline_entry(kind: str, data: dict[str, Any]) -> str:
    """One event as a short line of its own kind."""
    d = data
    due = (lambda key: _local(datetime.fromisoformat(d[key])) if d.get(key) else "—")  # noqa: E731
    if kind == "ActionTaken":
        payload = ", ".join(f"{k}={v}" for k, v in (d.get("payload") or {}).items())
        return f"[b]{d.get('action')}[/] {d.get('from_state')} → {d.get('to_state')}" + (f" ({payload})" if payload
                                                                                        else "")
    if kind == "CaseReported":
        p = d.get("payload") or {}
        return f"[b]reported[/] in {d.get('origin_unit')} ({p.get('category', '')}, via {p.get('channel', '')})"
    if kind == "DeadlineStarted":
        return f"deadline {d.get('timer')} ({d.get('duration')}, {d.get('calendar')}) due {due('due_at')}"
    if kind == "DeadlineStopped":
        met = "met" if d.get("met") else "[red]missed[/]"
        return f"deadline {d.get('timer')} stopped: {met}, used {_working(d.get('used_s'))} of {_working(d.get('allowed_s'))}"
    if kind == "DeadlineWarned":
        return f"[yellow]deadline {d.get('timer')} warned[/] (due {due('due_at')})"
    if kind == "DeadlineBreached":
        return f"[red]deadline {d.get('timer')} breached[/] (#{d.get('breach')}, due {due('due_at')})"
    if kind == "DeadlineExtended":
        return f"deadline {d.get('timer')} extended by {d.get('by')}: due {due('due_at')}"
    if kind in ("DeadlinePaused", "DeadlineResumed"):
        return f"deadline {d.get('timer')} {kind.removeprefix('Deadline').lower()}, {_working(d.get('left_s'))} left"
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


# --- production processes -----------------------------------------------------------------------

def _production(module: str, attr: str) -> Callable:
    import importlib

    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise _fail(f"production mode is not available in this installation ({module}.{attr}: {exc}); "
                    "see docs/at-scale.md") from None


@app.command()
@friendly
def scheduler() -> None:
    """Production: index pending timers in Redis and hand due ones to Celery workers."""
    _production("gridflow.adapters.scheduler", "run_scheduler")(_settings())


@app.command()
@friendly
def worker(concurrency: Annotated[int, typer.Option(min=1, help="Worker processes")] = 2,
           loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO") -> None:
    """Production: a Celery worker that fires timers and delivers notifications."""
    _production("gridflow.adapters.celery_app", "run_worker")(_settings(), concurrency=concurrency,
                                                              loglevel=loglevel)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
