"""/api/workspaces/{workspace_id}/credits: prepaid credit balance, ledger, grants."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import WORKSPACE_ROLE
from perpetuo.control import credits as service

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}/credits", tags=["Credits"], responses=WORKSPACE_ROLE
)


@router.get("", summary="Credit balance and ledger entries, newest first (admins)")
async def get_credits(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    balance, result = await service.ledger(plane, actor, workspace_id, limit=limit, cursor=cursor)
    return {**page(result, service.entry_view), "balance": service.balance_view(balance)}


@router.get("/balance", summary="Credit granted, used and left (any member)")
async def get_balance(workspace_id: str, actor: ActorDep, plane: PlaneDep) -> dict[str, Any]:
    return one(await service.summary(plane, actor, workspace_id))


@router.post("", status_code=201, summary="Grant or adjust credits (platform administrators only)")
async def add_credits(
    workspace_id: str, body: service.CreditEntryCreate, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.add_entry(plane, actor, workspace_id, body))
