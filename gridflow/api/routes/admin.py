"""The caller, the unit directory, users and API keys (writes are for admins)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ...service import admin, directory, organisation
from . import API_PREFIX
from ..deps import AdminDep, CallerDep, ServicesDep
from ..errors import responses
from ..schemas import (
    ApiKeyCreate, ApiKeyIssued, ApiKeysPublic, CallerPublic, Code, OrgChangePublic, OrgChangesPublic,
    UnitCreate, UnitPublic, UnitsPublic,
    UnitKind, UserCreate, UserPublic, UsersPublic,
)

router = APIRouter(prefix=API_PREFIX, tags=["organisation"])


@router.get("/me", response_model=CallerPublic, responses=responses(401))
def me(caller: CallerDep) -> CallerPublic:
    """Who the credentials stand for."""
    return CallerPublic(id=caller.id, role=caller.role, unit=caller.unit, name=caller.name,
                        case_number=caller.case_number)


@router.get("/units", response_model=UnitsPublic, responses=responses(401, 403, 422))
def list_units(svc: ServicesDep, caller: CallerDep, kind: UnitKind | None = None) -> UnitsPublic:
    """The organisation tree: city, districts, streets, communities, grids and departments."""
    return UnitsPublic(data=directory.list_units(svc, caller, kind))


@router.post("/units", status_code=201, response_model=UnitPublic, responses=responses(401, 403, 409, 422))
def create_unit(svc: ServicesDep, _: AdminDep, body: UnitCreate) -> UnitPublic:
    unit = admin.create_unit(svc, body.code, body.name, body.kind, body.parent, body.boundary_wkt)
    return UnitPublic(code=unit.code, name=unit.name, kind=unit.kind, parent=unit.parent_code,
                      has_boundary=bool(unit.boundary_wkt))


@router.get("/users", response_model=UsersPublic, responses=responses(401, 403, 422))
def list_users(svc: ServicesDep, _: AdminDep, unit: Code | None = None) -> UsersPublic:
    return UsersPublic(data=directory.list_users(svc, unit))


@router.post("/users", status_code=201, response_model=UserPublic, responses=responses(401, 403, 409, 422))
def create_user(svc: ServicesDep, _: AdminDep, body: UserCreate) -> UserPublic:
    user = admin.create_user(svc, body.id, body.name, body.role, body.unit, body.phone)
    return UserPublic(id=user.id, name=user.name, role=user.role, unit=user.unit_code, active=user.active,
                      phone=user.phone)


@router.get("/api-keys", response_model=ApiKeysPublic, responses=responses(401, 403, 422))
def list_api_keys(svc: ServicesDep, _: AdminDep,
                  user: Annotated[Code | None,
                                  Query(description="only this user's keys")] = None) -> ApiKeysPublic:
    """Issued keys (never the tokens themselves)."""
    return ApiKeysPublic(data=directory.list_api_keys(svc, user))


@router.post("/api-keys", status_code=201, response_model=ApiKeyIssued,
             responses=responses(401, 403, 404, 409, 422))
def issue_api_key(svc: ServicesDep, _: AdminDep, body: ApiKeyCreate) -> ApiKeyIssued:
    """Issue a key for a user; the token is in this response only. With ``expires_at`` or
    ``expires_in_days`` the key stops working then (401 ``unauthorized``, "expired")."""
    expires_at = body.expires_at
    if body.expires_in_days is not None:
        expires_at = svc.clock.now() + timedelta(days=body.expires_in_days)
    token = admin.issue_api_key(svc, body.user_id, body.label, expires_at=expires_at)
    return ApiKeyIssued(user_id=body.user_id, label=body.label, expires_at=expires_at, token=token)


@router.delete("/api-keys/{key_id}", status_code=204, response_class=Response,
               responses=responses(401, 403, 404, 422))
def revoke_api_key(request: Request, svc: ServicesDep, _: AdminDep,
                   key_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    """Revoke a key. Idempotent: revoking a revoked key answers 204 and keeps the first ``revoked_at``."""
    admin.revoke_api_key(svc, key_id)
    request.app.state.callers.clear()
    return Response(status_code=204)


@router.get("/admin/org/changes", response_model=OrgChangesPublic, responses=responses(401, 403, 422))
def list_org_changes(svc: ServicesDep, _: AdminDep,
                     limit: Annotated[int, Query(ge=1, le=500, description="newest first")] = 100
                     ) -> OrgChangesPublic:
    """The organisation's recorded changes (``gridflow org load``): who, when, from which files, the diff."""
    changes = organisation.list_org_changes(svc, limit)
    return OrgChangesPublic(data=[OrgChangePublic(id=c.id, at=c.at, actor=c.actor, source=c.source,
                                                  summary=c.summary, diff=dict(c.diff)) for c in changes],
                            count=len(changes))
