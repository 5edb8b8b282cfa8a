"""/api/workspaces/{workspace_id}/keys: virtual API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import WORKSPACE, WORKSPACE_ROLE
from perpetuo.control import api_keys as service

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}/keys", tags=["API keys"], responses=WORKSPACE
)


class Rotate(BaseModel):
    grace_seconds: Annotated[float, Field(ge=0, le=30 * 24 * 3600)] | None = Field(
        default=None, description="How long the old secret keeps working (default 24 h)"
    )


@router.get("", summary="List API keys")
async def list_keys(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.list_keys(plane, actor, workspace_id, limit=limit, cursor=cursor)
    return page(result, service.key_view)


@router.post(
    "",
    status_code=201,
    summary="Create an API key (the key is shown once)",
    responses=WORKSPACE_ROLE,
)
async def create_key(
    workspace_id: str, body: service.KeyCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    view, plaintext = await service.create_key(plane, actor, workspace_id, body)
    return one({**view, "key": plaintext})


@router.get("/{key_id}", summary="Get an API key")
async def get_key(
    workspace_id: str, key_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.get_key(plane, actor, workspace_id, key_id))


@router.patch(
    "/{key_id}",
    summary="Update an API key's name, restrictions or limits",
    responses=WORKSPACE_ROLE,
)
async def update_key(
    workspace_id: str, key_id: str, body: service.KeyUpdate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.update_key(plane, actor, workspace_id, key_id, body))


@router.post("/{key_id}/revoke", summary="Revoke an API key", responses=WORKSPACE_ROLE)
async def revoke_key(
    workspace_id: str, key_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.revoke_key(plane, actor, workspace_id, key_id))


@router.delete(
    "/{key_id}", summary="Revoke an API key (the record is kept)", responses=WORKSPACE_ROLE
)
async def delete_key(
    workspace_id: str, key_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.revoke_key(plane, actor, workspace_id, key_id))


@router.post(
    "/{key_id}/rotate",
    summary="Rotate: a new secret, the old one valid for a grace period",
    responses=WORKSPACE_ROLE,
)
async def rotate_key(
    workspace_id: str,
    key_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    body: Annotated[Rotate | None, Body()] = None,
) -> dict[str, Any]:
    grace = body.grace_seconds if body else None
    view, plaintext = await service.rotate_key(plane, actor, workspace_id, key_id, grace)
    return one({**view, "key": plaintext})
