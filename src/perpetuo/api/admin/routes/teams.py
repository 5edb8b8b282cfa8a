"""/api/workspaces/{workspace_id}/teams: teams (departments), who is in them, and each
member's own limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import WORKSPACE, WORKSPACE_ROLE, errors
from perpetuo.control import teams as service

router = APIRouter(prefix="/api/workspaces/{workspace_id}", tags=["Teams"], responses=WORKSPACE)


@router.get("/teams", summary="List teams")
async def list_teams(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.list_teams(plane, actor, workspace_id, limit=limit, cursor=cursor)
    return page(result, service.team_view)


@router.post(
    "/teams",
    status_code=201,
    summary="Create a team",
    responses={**WORKSPACE_ROLE, **errors(409)},
)
async def create_team(
    workspace_id: str, body: service.TeamCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.create_team(plane, actor, workspace_id, body))


@router.get("/teams/{team_id}", summary="Get a team: members, keys, limits and spend")
async def get_team(
    workspace_id: str, team_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.get_team(plane, actor, workspace_id, team_id))


@router.patch(
    "/teams/{team_id}",
    summary="Rename a team, or change its description or limits",
    responses={**WORKSPACE_ROLE, **errors(409)},
)
async def update_team(
    workspace_id: str, team_id: str, body: service.TeamUpdate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.update_team(plane, actor, workspace_id, team_id, body))


@router.delete(
    "/teams/{team_id}",
    status_code=204,
    summary="Delete a team (its members and keys stay, in no team)",
    responses=WORKSPACE_ROLE,
)
async def delete_team(
    workspace_id: str, team_id: str, actor: ActorDep, plane: PlaneDep
) -> Response:
    await service.delete_team(plane, actor, workspace_id, team_id)
    return Response(status_code=204)


@router.put(
    "/teams/{team_id}/members/{user_id}",
    summary="Put a member in the team (out of any other)",
    responses=WORKSPACE_ROLE,
)
async def add_member(
    workspace_id: str, team_id: str, user_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.set_member_team(plane, actor, workspace_id, team_id, user_id, True))


@router.delete(
    "/teams/{team_id}/members/{user_id}",
    status_code=204,
    summary="Take a member out of the team",
    responses=WORKSPACE_ROLE,
)
async def remove_member(
    workspace_id: str, team_id: str, user_id: str, actor: ActorDep, plane: PlaneDep
) -> Response:
    await service.set_member_team(plane, actor, workspace_id, team_id, user_id, False)
    return Response(status_code=204)


@router.get(
    "/members/{user_id}/limits",
    summary="A member's own limits, team and spend in the current budget period",
)
async def get_member_limits(
    workspace_id: str, user_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.get_member_limits(plane, actor, workspace_id, user_id))


@router.put(
    "/members/{user_id}/limits",
    summary="Set a member's own limits (over the workspace's per-user limits)",
    responses=WORKSPACE_ROLE,
)
async def set_member_limits(
    workspace_id: str, user_id: str, body: service.MemberLimits, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.set_member_limits(plane, actor, workspace_id, user_id, body))
