"""/api/workspaces/{workspace_id}/audit and /api/admin/audit: reading the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, page
from perpetuo.api.admin.responses import PLATFORM, WORKSPACE_ROLE
from perpetuo.control import audit_query as service

router = APIRouter(tags=["Audit log"])


def filters(
    action: Annotated[
        str | None, Query(max_length=64, description="e.g. member.role_change")
    ] = None,
    actor_id: Annotated[str | None, Query(max_length=40)] = None,
    target_type: Annotated[str | None, Query(max_length=40)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[dt.datetime | None, Query(description="ISO time, inclusive")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO time, exclusive")] = None,
) -> service.AuditFilters:
    return service.AuditFilters(action, actor_id, target_type, target_id, since, until)


FiltersDep = Annotated[service.AuditFilters, Depends(filters)]


@router.get(
    "/api/workspaces/{workspace_id}/audit",
    summary="A workspace's audit trail (admins)",
    responses=WORKSPACE_ROLE,
)
async def workspace_audit(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    where: FiltersDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.workspace_audit(
        plane, actor, workspace_id, where, limit=limit, cursor=cursor
    )
    return page(result, service.audit_view)


@router.get(
    "/api/admin/audit",
    summary="Platform-level audit entries (super-administrators)",
    responses=PLATFORM,
)
async def platform_audit(
    actor: ActorDep,
    plane: PlaneDep,
    where: FiltersDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.platform_audit(plane, actor, where, limit=limit, cursor=cursor)
    return page(result, service.audit_view)
