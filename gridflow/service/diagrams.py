"""A workflow version drawn as a Mermaid state diagram, for the API and the command line."""

from __future__ import annotations

from ..engine.definition import WorkflowDefinition
from ..engine.diagram import to_mermaid
from .catalog import WorkflowCatalog


def diagram(catalog: WorkflowCatalog, name: str, version: int | None = None,
            lang: str = "zh") -> tuple[WorkflowDefinition, str]:
    """A workflow version and its Mermaid state diagram, with Chinese or English labels."""
    defn = catalog.get(name, version)
    return defn, to_mermaid(defn, lang=lang)
