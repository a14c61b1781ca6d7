"""Workflow versions known to this process, and their engines.

Shipped and custom definitions are loaded from YAML; every version is also
stored in the database as it was, so a case stays on the rules it started
with even after its file changes or disappears. A stored version whose text
no longer matches its content hash is reported as corrupted, never replaced.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from ..adapters.orm import WorkflowVersion
from ..engine.calendar import CalendarRegistry
from ..engine.canonical import content_hash
from ..engine.definition import WorkflowDefinition
from ..engine.engine import Engine
from ..engine.errors import DefinitionError, NotFound, Problem
from ..engine.guards import GuardRegistry, default_guards
from ..engine.loader import load_text, parse_yaml

log = logging.getLogger(__name__)
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "workflows"


class WorkflowCatalog:
    def __init__(self, calendars: CalendarRegistry, guards: GuardRegistry | None = None) -> None:
        self.calendars = calendars
        self.guards = guards or default_guards()
        self._defs: dict[tuple[str, int], WorkflowDefinition] = {}
        self._texts: dict[tuple[str, int], str] = {}
        self._engines: dict[tuple[str, int], Engine] = {}
        self.corrupted: dict[tuple[str, int], str] = {}

    # --- loading ------------------------------------------------------------------------------

    def add_text(self, text: str, source: str) -> WorkflowDefinition:
        defn = load_text(text, source, guards=self.guards, calendars=self.calendars.names())
        key = (defn.name, defn.version)
        if key in self._defs and content_hash(dict(self._defs[key].raw)) != content_hash(dict(defn.raw)):
            raise DefinitionError([Problem(
                f"{defn.key} is already loaded from {self._defs[key].source} with different content; "
                "bump the version number", "workflow", source)], source)
        self._defs[key] = defn
        self._texts[key] = text
        return defn

    def add_file(self, path: str | Path) -> WorkflowDefinition:
        p = Path(path)
        return self.add_text(p.read_text(encoding="utf-8"), str(p))

    def add_directory(self, directory: str | Path) -> list[WorkflowDefinition]:
        return [self.add_file(p) for p in sorted(Path(directory).glob("*.yaml"))]

    def load_shipped(self) -> list[WorkflowDefinition]:
        return self.add_directory(SHIPPED_DIR)

    # --- lookup -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted({n for n, _ in self._defs})

    def versions(self, name: str) -> list[int]:
        return sorted(v for n, v in self._defs if n == name)

    def all(self) -> list[WorkflowDefinition]:
        return [self._defs[k] for k in sorted(self._defs)]

    def newest(self, name: str) -> WorkflowDefinition:
        versions = self.versions(name)
        if not versions:
            raise NotFound(f"no workflow named {name!r} (known: {', '.join(self.names()) or 'none'})",
                           workflow=name)
        return self._defs[(name, versions[-1])]

    def get(self, name: str, version: int | None = None) -> WorkflowDefinition:
        if version is None:
            return self.newest(name)
        defn = self._defs.get((name, version))
        if defn is None:
            if (name, version) in self.corrupted:
                raise DefinitionError([Problem(self.corrupted[(name, version)], "workflow",
                                               f"{name}@{version}")])
            raise NotFound(f"no workflow {name}@{version} (versions: {self.versions(name)})", workflow=name,
                           version=version)
        return defn

    def text(self, name: str, version: int) -> str:
        return self._texts[(name, version)]

    def engine(self, name: str, version: int) -> Engine:
        key = (name, version)
        eng = self._engines.get(key)
        if eng is None:
            eng = Engine(self.get(name, version), self.calendars, self.guards)
            self._engines[key] = eng
        return eng

    # --- database -----------------------------------------------------------------------------

    def sync(self, session: Session, now: datetime) -> None:
        """Store new versions; load stored versions this process lacks; refuse silent edits."""
        stored = {(r.name, r.version): r for r in session.exec(select(WorkflowVersion))}
        for key, defn in list(self._defs.items()):
            digest = content_hash(dict(defn.raw))
            row = stored.get(key)
            if row is None:
                session.add(WorkflowVersion(name=defn.name, version=defn.version, content_hash=digest,
                                            source_text=self._texts[key], registered_at=now))
            elif row.content_hash != digest:
                raise DefinitionError([Problem(
                    f"{defn.key} in {defn.source} differs from the version stored in the database on "
                    f"{row.registered_at:%Y-%m-%d}; cases depend on the stored rules — give the changed "
                    "definition a new version number", "workflow", defn.source)], defn.source)
        for key, row in stored.items():
            if key in self._defs:
                continue
            try:
                data, _ = parse_yaml(row.source_text, f"db:{row.name}@{row.version}")
                if content_hash(data) != row.content_hash:
                    raise ValueError("stored text does not match its content hash")
                self.add_text(row.source_text, f"db:{row.name}@{row.version}")
            except (DefinitionError, ValueError) as exc:
                msg = f"stored definition {row.name}@{row.version} is corrupted: {exc}"
                log.error(msg)
                self.corrupted[key] = msg
        session.flush()
