"""Workspace access: who may see a workspace, and with which role.

Someone with no role in a workspace gets 404 for everything in it, as if it did not exist;
a member whose role is too low gets 403.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from perpetuo.control.actor import Actor, Role
from perpetuo.control.errors import forbidden, not_found
from perpetuo.store.schema import memberships, workspaces


async def role_in(conn: AsyncConnection, actor: Actor, workspace_id: str) -> Role | None:
    exists = await conn.scalar(select(workspaces.c.id).where(workspaces.c.id == workspace_id))
    if exists is None:
        return None
    if actor.is_superadmin:
        return Role.OWNER
    if actor.user_id is None:
        return None
    role = await conn.scalar(
        select(memberships.c.role).where(
            memberships.c.workspace_id == workspace_id, memberships.c.user_id == actor.user_id
        )
    )
    return Role.parse(role) if role else None


async def require_role(
    conn: AsyncConnection, actor: Actor, workspace_id: str, minimum: Role
) -> Role:
    role = await role_in(conn, actor, workspace_id)
    if role is None:
        raise not_found("Workspace")
    if role < minimum:
        raise forbidden(f"This needs the {minimum.label} role or higher in this workspace.")
    return role
