"""/api/workspaces/{workspace_id}/members: who belongs to a workspace, and with which role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import WORKSPACE, WORKSPACE_ROLE, errors
from perpetuo.control import members as service

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}/members", tags=["Members"], responses=WORKSPACE
)


@router.get("", summary="List members")
async def list_members(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.list_members(plane, actor, workspace_id, limit=limit, cursor=cursor)
    return page(result, service.member_view)


@router.patch(
    "/{user_id}", summary="Change a member's role", responses={**WORKSPACE_ROLE, **errors(409)}
)
async def change_role(
    workspace_id: str, user_id: str, body: service.RoleChange, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.change_role(plane, actor, workspace_id, user_id, body))


@router.delete(
    "/{user_id}",
    status_code=204,
    summary="Remove a member (or leave, with your own id)",
    responses={**WORKSPACE_ROLE, **errors(409)},
)
async def remove_member(
    workspace_id: str, user_id: str, actor: ActorDep, plane: PlaneDep
) -> Response:
    await service.remove_member(plane, actor, workspace_id, user_id)
    return Response(status_code=204)
