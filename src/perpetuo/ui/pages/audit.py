"""The workspace's audit log: who changed what and when (admins and owners)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control import audit_query, members
from perpetuo.control.actor import Role
from perpetuo.control.audit_query import AuditFilters
from perpetuo.ui.context import PageDep, show

router = APIRouter(prefix="/ui/w/{workspace_id}/audit")
TARGETS = (
    "api_key",
    "provider_credential",
    "workspace_model",
    "member",
    "invite",
    "workspace",
    "credit_entry",
)


@router.get("")
async def audit_page(
    page: PageDep,
    action: str | None = None,
    target_type: str | None = None,
    actor_id: str | None = None,
    cursor: str | None = None,
) -> Response:
    page.require(Role.ADMIN)
    filters = AuditFilters(
        action=action or None, target_type=target_type or None, actor_id=actor_id or None
    )
    result = await audit_query.workspace_audit(
        page.plane, page.actor, page.id, filters, limit=50, cursor=cursor
    )
    people = await members.list_members(page.plane, page.actor, page.id, limit=200, cursor=None)
    chosen = {
        k: v
        for k, v in (("action", action), ("target_type", target_type), ("actor_id", actor_id))
        if v
    }
    return show(
        page,
        "audit.html",
        active="audit",
        chosen=chosen,
        events=[audit_query.audit_view(row) for row in result.rows],
        people={row.id: row.email for row in people.rows},
        targets=TARGETS,
        next_url=f"?{urlencode({**chosen, 'cursor': result.next_cursor})}"
        if result.next_cursor
        else None,
        first_url=f"?{urlencode(chosen)}" if cursor else None,
    )
