"""gridflow's layers, checked on its import graph: who may import whom, and no import cycles.

The graph is read from the source with ``ast``: every import statement counts, the lazy ones inside
functions too, and relative imports are resolved. ``gridflow/__init__.py`` is the public facade: its
lazy ``__getattr__`` re-exports are not import statements, so they add no arrows, and a name imported
from it (``from gridflow import Actor``) is an arrow to the facade only. Production processes and the
API that the CLI starts by name (``importlib.import_module``, uvicorn's import string) are not arrows.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IO = ("sqlalchemy", "sqlmodel", "fastapi", "starlette", "celery", "kombu", "redis", "httpx", "requests",
      "psycopg", "sqlite3", "alembic", "uvicorn")
ENTRY = ("gridflow.api", "gridflow.cli", "gridflow.processes")

# A name covers that module or package and everything below it; "gridflow" is any gridflow module, the
# facade included. A package may always import its own modules.
RULES: list[tuple[str, tuple[str, ...], str]] = [
    # importer             must not import                                     because
    ("gridflow.engine",    ("gridflow", *IO),                                  "it decides, adapters act"),
    ("gridflow.adapters",  ("gridflow.service", "gridflow.bootstrap", *ENTRY), "the layers above use them"),
    ("gridflow.service",   ("gridflow.bootstrap", "gridflow.demo", *ENTRY),    "bootstrap wires it"),
    ("gridflow.demo",      ("gridflow.bootstrap", *ENTRY),                     "a client of the service"),
    ("gridflow.api",       ("gridflow.cli", "gridflow.processes"),             "entry points are peers"),
    ("gridflow.cli",       ("gridflow.api", "gridflow.processes"),             "entry points are peers"),
    ("gridflow.cli",       ("gridflow.engine", "gridflow.adapters"),           "bootstrap wires it"),
    ("gridflow.processes", ("gridflow.api", "gridflow.cli"),                   "entry points are peers"),
]


@dataclass(frozen=True)
class Arrow:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported} (line {self.line})"


def _covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_names(package_dir: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (a package is its ``__init__``)."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _targets(node: ast.ImportFrom, importer: str, is_package: bool, known: set[str]) -> list[str]:
    """What ``from X import a, b`` imports: each submodule ``X.a`` that exists, else ``X`` itself
    (so a name re-exported by the facade is an arrow to the facade)."""
    if node.level:
        package = (importer if is_package else importer.rpartition(".")[0]).split(".")
        module = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return sorted({f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names})


def import_graph(package_dir: Path) -> list[Arrow]:
    """Every import statement of every module of the package, as arrows between dotted names;
    none from the package's own ``__init__``, the facade."""
    modules = module_names(package_dir)
    known = set(modules)
    arrows = []
    for name, path in modules.items():
        if name == package_dir.name:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                arrows += [Arrow(name, a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                arrows += [Arrow(name, t, node.lineno) for t in _targets(node, name, is_package, known)]
    return arrows


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the strongly connected components of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def a_cycle(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One concrete cycle through the component's first node, for the message (shortest, by BFS)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for nxt in sorted(graph.get(node, set()) & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return component


def _describe(components: list[list[str]], graph: dict[str, set[str]],
              lines: dict[tuple[str, str], int]) -> str:
    """Each component, and one cycle in it as ``importer:line → imported:line → …``."""
    out = []
    for component in components:
        cycle = a_cycle(component, graph)
        steps = [f"{a}:{lines[(a, b)]}" if (a, b) in lines else a for a, b in zip(cycle, cycle[1:])]
        out.append(f"  {', '.join(component)}\n    e.g. {' → '.join(steps)} → {cycle[-1]}")
    return "\n".join(out)


def unit_of(module: str) -> str:
    """The subpackage a module belongs to (``gridflow.engine``), or the top-level module itself."""
    return ".".join(module.split(".")[:2])


@pytest.fixture(scope="module")
def arrows() -> list[Arrow]:
    found = [a for a in import_graph(ROOT / "gridflow")
             if _covers("gridflow", a.imported) or a.imported.split(".")[0] in IO]
    return sorted(found, key=lambda a: (a.importer, a.line, a.imported))


def test_every_layer_imports_only_what_the_rules_allow(arrows):
    broken = []
    for layer, forbidden, why in RULES:
        for arrow in arrows:
            if not _covers(layer, arrow.importer) or _covers(layer, arrow.imported):
                continue
            hit = next((f for f in forbidden if _covers(f, arrow.imported)), None)
            if hit is not None:
                broken.append(f"  {arrow}: {layer} must not import {hit} — {why}")
    if broken:
        pytest.fail("forbidden imports between layers:\n" + "\n".join(broken), pytrace=False)


def test_no_import_cycle_between_subpackages(arrows):
    graph: dict[str, set[str]] = defaultdict(set)
    for a in arrows:
        src, dst = unit_of(a.importer), unit_of(a.imported)
        if src != dst and _covers("gridflow", a.imported) and "gridflow" not in (src, dst):
            graph[src].add(dst)
    cycles = strongly_connected(graph)
    if cycles:
        pytest.fail("import cycles between gridflow's subpackages:\n" + _describe(cycles, graph, {}),
                    pytrace=False)


def test_no_import_cycle_between_modules(arrows):
    graph: dict[str, set[str]] = defaultdict(set)
    lines: dict[tuple[str, str], int] = {}
    for a in arrows:
        if a.importer != a.imported and _covers("gridflow", a.imported) and a.imported != "gridflow":
            graph[a.importer].add(a.imported)
            lines.setdefault((a.importer, a.imported), a.line)
    cycles = strongly_connected(graph)
    if cycles:
        pytest.fail("import cycles between modules (module:line of each import):\n"
                    + _describe(cycles, graph, lines), pytrace=False)


def test_importing_the_engine_and_the_workflows_loads_no_io_library_and_no_outer_layer():
    """The static rules miss dynamic imports; a fresh interpreter sees what really gets loaded."""
    outer = ("gridflow.adapters", "gridflow.service", "gridflow.bootstrap", *ENTRY)
    probe = (
        "import sys, gridflow.engine, gridflow.engine.diagram, gridflow.workflows\n"
        "gridflow.workflows.load_shipped()\n"
        f"bad = {sorted(IO)!r}\n"
        f"outer = {outer!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad or m.startswith(outer)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# --- the checker itself, on a made-up package ---------------------------------------------------------


def test_the_graph_reader_resolves_relative_and_lazy_imports_and_treats_the_facade_as_a_leaf(tmp_path):
    files = {
        "pkg/__init__.py": "def __getattr__(name):\n    from .a import x\n    return getattr(x, name)\n",
        "pkg/a/__init__.py": "from .x import f\n",
        "pkg/a/x.py": "from .. import VERSION\nfrom ..b import y\n\ndef f():\n    from ..b.y import g\n",
        "pkg/b/__init__.py": "",
        "pkg/b/y.py": "import os\nfrom pkg.a import x\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    arrows = {(a.importer, a.imported, a.line) for a in import_graph(tmp_path / "pkg")}
    assert arrows == {("pkg.a", "pkg.a.x", 1), ("pkg.a.x", "pkg", 1), ("pkg.a.x", "pkg.b.y", 2),
                      ("pkg.a.x", "pkg.b.y", 5), ("pkg.b.y", "os", 1), ("pkg.b.y", "pkg.a.x", 2)}


def test_tarjan_finds_every_cycle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": {"g"}}
    assert sorted(strongly_connected(graph)) == [["a", "b", "c"], ["d", "e"]]
    assert a_cycle(["a", "b", "c"], graph) == ["a", "b", "c", "a"]


MAX_FUNCTION_LINES = 80


def test_no_function_is_longer_than_a_screen():
    """Small functions, one job each (alembic's generated migrations aside)."""
    long = []
    for path in sorted((ROOT / "gridflow").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
