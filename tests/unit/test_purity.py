"""The engine stays pure: no storage, web, queue or HTTP library, and no outer gridflow layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "gridflow" / "engine"
FORBIDDEN = {"sqlalchemy", "sqlmodel", "fastapi", "starlette", "celery", "kombu", "redis", "httpx", "requests",
             "psycopg", "sqlite3", "alembic", "uvicorn"}
OUTER = ("gridflow.adapters", "gridflow.api", "gridflow.service", "gridflow.cli", "gridflow.bootstrap")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against gridflow.engine
                base = "gridflow" if node.level > 1 else "gridflow.engine"
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


def test_no_engine_module_imports_io_libraries_or_outer_layers():
    for path in sorted(ENGINE.glob("*.py")):
        for name in imported_modules(path):
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
            assert not name.startswith(OUTER), f"{path.name} imports {name}"


def test_importing_the_engine_and_the_workflows_loads_none_of_them():
    probe = (
        "import sys, gridflow.engine, gridflow.engine.diagram, gridflow.workflows\n"
        "gridflow.workflows.load_shipped()\n"
        f"bad = {sorted(FORBIDDEN)!r}\n"
        f"outer = {OUTER!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad or m.startswith(outer)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=ENGINE.parents[1])
    assert out.stdout.strip() == "[]"
