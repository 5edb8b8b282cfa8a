"""/api/workspaces/{workspace_id}/roles: the roles members can hold (built-in and the
workspace's custom ones), and /api/permissions: the permission names roles are made of."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import SIGNED_IN, WORKSPACE, WORKSPACE_ROLE, errors
from perpetuo.control import roles as service

router = APIRouter(tags=["Roles"])
ROLES = "/api/workspaces/{workspace_id}/roles"


@router.get("/api/permissions", summary="Every permission a role can hold", responses=SIGNED_IN)
async def list_permissions(actor: ActorDep) -> dict[str, Any]:
    return one(service.permission_views())


@router.get(
    ROLES, summary="List roles: the built-in ones, then the custom ones", responses=WORKSPACE
)
async def list_roles(workspace_id: str, actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    custom = await service.list_roles(plane, actor, workspace_id)
    return one(service.built_in_views() + custom)


@router.post(
    ROLES,
    status_code=201,
    summary="Create a custom role",
    responses={**WORKSPACE_ROLE, **errors(409)},
)
async def create_role(
    workspace_id: str, body: service.RoleCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.create_role(plane, actor, workspace_id, body))


@router.get(ROLES + "/{role_id}", summary="One custom role", responses=WORKSPACE_ROLE)
async def get_role(
    workspace_id: str, role_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.get_role(plane, actor, workspace_id, role_id))


@router.patch(
    ROLES + "/{role_id}",
    summary="Change a custom role (a new name follows it to its members)",
    responses={**WORKSPACE_ROLE, **errors(409)},
)
async def update_role(
    workspace_id: str, role_id: str, body: service.RoleUpdate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.update_role(plane, actor, workspace_id, role_id, body))


@router.delete(
    ROLES + "/{role_id}",
    status_code=204,
    summary="Delete a custom role no member holds",
    responses={**WORKSPACE_ROLE, **errors(409)},
)
async def delete_role(
    workspace_id: str, role_id: str, actor: ActorDep, plane: PlaneDep
) -> Response:
    await service.delete_role(plane, actor, workspace_id, role_id)
    return Response(status_code=204)
