"""/api/workspaces: the workspaces (tenants) the caller belongs to."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import SIGNED_IN, WORKSPACE, WORKSPACE_ROLE, errors
from perpetuo.control import workspaces as service

router = APIRouter(prefix="/api/workspaces", tags=["Workspaces"], responses=SIGNED_IN)


@router.get("", summary="List the workspaces you belong to, with your role in each")
async def list_workspaces(
    actor: ActorDep, plane: PlaneDep, limit: LimitParam = 50, cursor: CursorParam = None
) -> dict[str, Any]:
    result = await service.list_workspaces(plane, actor, limit=limit, cursor=cursor)
    return page(result, partial(service.listed_view, actor))


@router.post(
    "",
    status_code=201,
    summary="Create a workspace (you become its owner)",
    responses=errors(403),
)
async def create_workspace(
    body: service.WorkspaceCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.create_workspace(plane, actor, body))


@router.get("/{workspace_id}", summary="Get a workspace", responses=WORKSPACE)
async def get_workspace(workspace_id: str, actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return one(await service.get_workspace(plane, actor, workspace_id))


@router.patch(
    "/{workspace_id}",
    summary="Rename a workspace or change its settings (admins)",
    responses=WORKSPACE_ROLE,
)
async def update_workspace(
    workspace_id: str, body: service.WorkspaceUpdate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.update_workspace(plane, actor, workspace_id, body))


@router.delete(
    "/{workspace_id}",
    status_code=204,
    summary="Delete a workspace and all it holds (owners)",
    responses={**WORKSPACE_ROLE, **errors(409)},
)
async def delete_workspace(workspace_id: str, actor: ActorDep, plane: PlaneDep) -> Response:
    await service.delete_workspace(plane, actor, workspace_id)
    return Response(status_code=204)
