"""/api/admin/users: platform administration of accounts (super-administrators only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import PLATFORM, errors
from perpetuo.control import users as service
from perpetuo.control.accounts import user_view

router = APIRouter(prefix="/api/admin/users", tags=["Platform administration"], responses=PLATFORM)


@router.get("", summary="List every account")
async def list_users(
    actor: ActorDep,
    plane: PlaneDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    email: Annotated[str | None, Query(max_length=320, description="Exact address")] = None,
) -> dict[str, Any]:
    result = await service.list_users(plane, actor, limit=limit, cursor=cursor, email=email)
    return page(result, user_view)


@router.post(
    "/{user_id}/disable",
    summary="Disable an account and end its sessions",
    responses=errors(404),
)
async def disable_user(user_id: str, actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return one(await service.set_disabled(plane, actor, user_id, True))


@router.post("/{user_id}/enable", summary="Enable a disabled account", responses=errors(404))
async def enable_user(user_id: str, actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return one(await service.set_disabled(plane, actor, user_id, False))
