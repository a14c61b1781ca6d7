"""The event catalogue (事项目录): what can be reported, with its limits and default workflow."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from ...service.categories import listing
from . import API_PREFIX
from ..deps import ServicesDep
from ..errors import responses
from ..schemas import CategoriesPublic, Code, category_public

router = APIRouter(prefix=API_PREFIX, tags=["catalog"])
Kind = Literal["component", "event", "governance", "hotline"]


@router.get("/catalog", response_model=CategoriesPublic, responses=responses(422))
def list_categories(svc: ServicesDep, kind: Kind | None = None,
                    workflow: Code | None = None) -> CategoriesPublic:
    """The categories a report may name (labels in Chinese and English, kind, major class, urgency, default
    workflow, limits, assignment order), by code; ``kind`` and ``workflow`` filter them. Public, like the
    report form that needs it."""
    found = listing(svc.categories, kind, workflow)
    return CategoriesPublic(data=[category_public(c) for c in found], count=len(found))
