"""The lifecycles gridflow ships, as YAML beside this module.

A city copies one and changes it (deadlines, roles, labels) under a new
version number; these are the defaults the domain documents describe.
"""

from __future__ import annotations

from pathlib import Path

from ..engine.definition import WorkflowDefinition
from ..engine.loader import load_file

__all__ = ["WORKFLOWS_DIR", "load_shipped", "shipped_paths"]

WORKFLOWS_DIR = Path(__file__).resolve().parent


def shipped_paths() -> list[Path]:
    """Every shipped definition file, in name order (calendar override files live in a subfolder)."""
    return sorted(WORKFLOWS_DIR.glob("*.yaml"))


def load_shipped(calendars=None, guards=None) -> dict[str, WorkflowDefinition]:
    """Load and validate every shipped definition: workflow name -> its newest version.

    ``calendars`` is a CalendarRegistry or the calendar names definitions may use, ``guards`` a
    GuardRegistry; both default as in :func:`gridflow.engine.loader.build`. A broken file raises
    its :class:`~gridflow.engine.errors.DefinitionError` with every problem in it.
    """
    newest: dict[str, WorkflowDefinition] = {}
    for path in shipped_paths():
        defn = load_file(path, calendars=calendars, guards=guards)
        if defn.name not in newest or defn.version > newest[defn.name].version:
            newest[defn.name] = defn
    return newest
