"""/api/workspaces/{workspace_id}/cache: response-cache statistics and purges."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import one
from perpetuo.api.admin.responses import WORKSPACE, WORKSPACE_ROLE
from perpetuo.control import response_cache as service

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}/cache", tags=["Response cache"], responses=WORKSPACE
)
AliasParam = Annotated[
    str | None, Query(max_length=200, description="Only this alias's answers (default: all)")
]


@router.get("", summary="Cached answers held for the workspace")
async def cache_stats(
    workspace_id: str, request: Request, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    cache = request.app.state.gateway.cache
    return one(await service.cache_stats(plane, cache, actor, workspace_id))


@router.delete(
    "",
    summary="Purge the workspace's cached answers, or one alias's (admins)",
    responses=WORKSPACE_ROLE,
)
async def purge_cache(
    workspace_id: str,
    request: Request,
    actor: ActorDep,
    plane: PlaneDep,
    alias: AliasParam = None,
) -> dict[str, Any]:
    cache = request.app.state.gateway.cache
    return one(await service.purge_cache(plane, cache, actor, workspace_id, alias))
