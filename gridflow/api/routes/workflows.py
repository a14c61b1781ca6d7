"""Workflow definitions: list, one version as data, its Mermaid diagram."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ...service.diagrams import diagram
from . import API_PREFIX
from ..deps import ServicesDep
from ..errors import responses
from ..schemas import Code, DiagramPublic, WorkflowPublic, WorkflowsPublic, workflow_public, workflow_summary

router = APIRouter(prefix=f"{API_PREFIX}/workflows", tags=["workflows"])
Version = Annotated[int | None, Query(ge=1, le=1_000_000, description="a version; default: the newest")]


@router.get("", response_model=WorkflowsPublic, responses=responses())
def list_workflows(svc: ServicesDep) -> WorkflowsPublic:
    """The workflows this server knows, each at its newest version."""
    cat = svc.catalog
    return WorkflowsPublic(data=[workflow_summary(cat.newest(n), cat.versions(n)) for n in cat.names()])


@router.get("/{name}", response_model=WorkflowPublic, responses=responses(404, 422))
def get_workflow(svc: ServicesDep, name: Code, version: Version = None) -> WorkflowPublic:
    """A definition: states with their stage and timers, actions with roles, fields and guards."""
    defn = svc.catalog.get(name, version)
    return workflow_public(defn, svc.catalog.text(defn.name, defn.version))


@router.get("/{name}/diagram", response_model=DiagramPublic, responses=responses(404, 422, 501))
def get_diagram(svc: ServicesDep, name: Code, version: Version = None,
                lang: Literal["zh", "en"] = "zh") -> DiagramPublic:
    """The lifecycle as a Mermaid state diagram, with Chinese or English labels."""
    defn, text = diagram(svc.catalog, name, version, lang)
    return DiagramPublic(name=defn.name, version=defn.version, lang=lang, mermaid=text)
