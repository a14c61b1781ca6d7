"""The storage's failures reach the service and the API as gridflow's errors, never as the ORM's."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "gridflow"
ABOVE_ADAPTERS = [*(p for layer in ("service", "api", "processes", "cli", "demo")
                    for p in sorted((ROOT / layer).rglob("*.py"))), ROOT / "bootstrap.py"]


def _imports_sqlalchemy_exc(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("sqlalchemy.exc") or (
                    node.module == "sqlalchemy" and any(a.name == "exc" for a in node.names)):
                return True
        if isinstance(node, ast.Import) and any(a.name.startswith("sqlalchemy.exc") for a in node.names):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "exc" and getattr(node.value, "id", "") in {
                "sa", "sqlalchemy"}:
            return True
    return False


def test_nothing_above_the_adapters_handles_sqlalchemy_exceptions():
    offenders = [str(p.relative_to(ROOT)) for p in ABOVE_ADAPTERS if _imports_sqlalchemy_exc(p)]
    assert offenders == []
