"""gridflow: a workflow engine for community case dispatch and escalation (网格化治理 案件流转).

The names a workflow developer needs; everything else lives in the subpackages.
Heavier names (the wiring, the service) load on first use, so importing the
engine alone stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Actor": "gridflow.engine.case",
    "LOCAL_ZONE": "gridflow.engine.calendar",
    "ManualClock": "gridflow.engine.clock",
    "ScaledClock": "gridflow.engine.clock",
    "SystemClock": "gridflow.engine.clock",
    "Engine": "gridflow.engine.engine",
    "GridflowError": "gridflow.engine.errors",
    "DefinitionError": "gridflow.engine.errors",
    "load_file": "gridflow.engine.loader",
    "Settings": "gridflow.settings",
    "App": "gridflow.bootstrap",
    "bootstrap": "gridflow.bootstrap",
    "ReportCase": "gridflow.service.intake",
    "TakeAction": "gridflow.service.actions",
    "report_case": "gridflow.service.intake",
    "take_action": "gridflow.service.actions",
    "create_app": "gridflow.api.app",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gridflow' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
