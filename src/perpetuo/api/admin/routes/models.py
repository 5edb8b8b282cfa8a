"""/api/workspaces/{workspace_id}/models: the workspace's own aliases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one
from perpetuo.api.admin.responses import WORKSPACE, WORKSPACE_ROLE, errors
from perpetuo.control import models as service

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}/models",
    tags=["Workspace models"],
    responses=WORKSPACE,
)


async def _disabled(request: Request, workspace_id: str) -> dict[str, str]:
    routes = request.app.state.workspace_routes
    return (await routes.get(workspace_id)).disabled if routes is not None else {}


@router.get("", summary="List the workspace's aliases, with why any cannot serve")
async def list_models(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    request: Request,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.list_models(plane, actor, workspace_id, limit=limit, cursor=cursor)
    disabled = await _disabled(request, workspace_id)
    return {
        "data": [service.model_view(r, disabled.get(r.alias)) for r in result.rows],
        "next_cursor": result.next_cursor,
        "has_more": result.has_more,
    }


@router.post(
    "", status_code=201, summary="Add an alias", responses={**WORKSPACE_ROLE, **errors(409)}
)
async def create_model(
    workspace_id: str, body: service.ModelCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.create_model(plane, actor, workspace_id, body))


@router.get("/{alias:path}", summary="Get an alias")
async def get_model(
    workspace_id: str, alias: str, actor: ActorDep, plane: PlaneDep, request: Request
) -> dict[str, Any]:
    row = await service.get_model(plane, actor, workspace_id, alias)
    return one(service.model_view(row, (await _disabled(request, workspace_id)).get(alias)))


@router.put(
    "/{alias:path}",
    summary="Replace an alias's deployments and settings",
    responses=WORKSPACE_ROLE,
)
async def replace_model(
    workspace_id: str, alias: str, body: service.ModelSpec, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.replace_model(plane, actor, workspace_id, alias, body))


@router.delete(
    "/{alias:path}", status_code=204, summary="Delete an alias", responses=WORKSPACE_ROLE
)
async def delete_model(workspace_id: str, alias: str, actor: ActorDep, plane: PlaneDep) -> Response:
    await service.delete_model(plane, actor, workspace_id, alias)
    return Response(status_code=204)
