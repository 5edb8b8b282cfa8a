"""/api/workspaces/{workspace_id}/invites and /api/invites/accept: joining by invitation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import WORKSPACE_ROLE, errors
from perpetuo.control import invites as service

# Managing invites needs the admin role; accepting one, being the person invited.
router = APIRouter(tags=["Invites"], responses=WORKSPACE_ROLE)
PREFIX = "/api/workspaces/{workspace_id}/invites"


@router.get(PREFIX, summary="List invites (never their tokens)")
async def list_invites(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.list_invites(plane, actor, workspace_id, limit=limit, cursor=cursor)
    return page(result, service.invite_view)


@router.post(
    PREFIX,
    status_code=201,
    summary="Invite someone by email (the token is shown once)",
    responses=errors(409),
)
async def create_invite(
    workspace_id: str, body: service.InviteCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    view, token = await service.create_invite(plane, actor, workspace_id, body)
    return one({**view, "token": token})


@router.delete(
    PREFIX + "/{invite_id}", status_code=204, summary="Revoke an invite", responses=errors(409)
)
async def revoke_invite(
    workspace_id: str, invite_id: str, actor: ActorDep, plane: PlaneDep
) -> Response:
    await service.revoke_invite(plane, actor, workspace_id, invite_id)
    return Response(status_code=204)


@router.post(
    "/api/invites/accept",
    summary="Accept an invite sent to your email address",
    responses=errors(409, 410),
)
async def accept_invite(
    body: service.InviteAccept, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.accept_invite(plane, actor, body))
