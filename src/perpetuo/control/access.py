"""Workspace access: who may see a workspace, and what they may do in it.

Someone with no role in a workspace gets 404 for everything in it, as if it did not exist;
a member whose role lacks the permission gets 403. A role is a built-in one or a custom
role of the workspace (control/permissions.py), read with the membership in one query.
"""

from __future__ import annotations

from sqlalchemy import and_, select

from perpetuo.control.actor import Actor, Role
from perpetuo.control.errors import forbidden, not_found
from perpetuo.control.permissions import BUILT_IN, OWNER, PERMISSIONS, Grant
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.role_tables import workspace_roles
from perpetuo.store.schema import memberships, workspaces


async def grant_in(conn: AsyncConnection, actor: Actor, workspace_id: str) -> Grant | None:
    """The actor's role and permissions in the workspace; None for strangers (and for an
    unknown workspace)."""
    exists = await conn.scalar(select(workspaces.c.id).where(workspaces.c.id == workspace_id))
    if exists is None:
        return None
    if actor.is_superadmin:
        return OWNER
    if actor.user_id is None:
        return None
    row = (
        await conn.execute(
            select(memberships.c.role, workspace_roles.c.permissions)
            .select_from(
                memberships.outerjoin(
                    workspace_roles,
                    and_(
                        workspace_roles.c.workspace_id == memberships.c.workspace_id,
                        workspace_roles.c.name == memberships.c.role,
                    ),
                )
            )
            .where(
                memberships.c.workspace_id == workspace_id,
                memberships.c.user_id == actor.user_id,
            )
        )
    ).first()
    if row is None:
        return None
    if row.role in BUILT_IN:
        return Grant(row.role, BUILT_IN[row.role])
    # A custom role; one deleted under a member leaves them with no permission at all.
    return Grant(row.role, frozenset(row.permissions or ()))


async def require(conn: AsyncConnection, actor: Actor, workspace_id: str, permission: str) -> Grant:
    """The actor's grant, if it holds `permission`: 404 for strangers, 403 otherwise."""
    grant = await grant_in(conn, actor, workspace_id)
    if grant is None:
        raise not_found("Workspace")
    if not grant.allows(permission):
        raise forbidden(
            f"This needs the {permission} permission in this workspace "
            f"({PERMISSIONS[permission][1]}); your role ({grant.role}) does not have it."
        )
    return grant


async def role_in(conn: AsyncConnection, actor: Actor, workspace_id: str) -> Role | None:
    grant = await grant_in(conn, actor, workspace_id)
    return grant.rank if grant is not None else None


async def require_role(
    conn: AsyncConnection, actor: Actor, workspace_id: str, minimum: Role
) -> Role:
    """For checks that ask for a built-in role: a custom role passes when it holds all of
    that role's permissions, and counts as the highest built-in role it covers."""
    grant = await grant_in(conn, actor, workspace_id)
    if grant is None:
        raise not_found("Workspace")
    rank = grant.rank
    if rank is None or rank < minimum:
        raise forbidden(f"This needs the {minimum.label} role or higher in this workspace.")
    return rank
