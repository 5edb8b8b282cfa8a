"""Workspace members: list, change a role, remove (or leave).

The rules, for an actor with role A acting on a member whose role is T:
- anyone in the workspace may list its members;
- holders of `members.manage` (admins and owners, or a custom role with it) manage members;
  only owners grant, change or remove the owner and admin roles (so an admin manages members
  and viewers only), and nobody grants, changes or removes a role with permissions they lack;
- anyone may leave, or lower their own role;
- a workspace always keeps at least one owner.
Platform super-administrators and the master key act as owners.

A member who leaves or is removed keeps their API keys, but the keys stop working (403
`key_owner_disabled`) on every instance until they are a member again.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select, update

from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor, Role
from perpetuo.control.api_keys import owner_changed
from perpetuo.control.errors import conflict, forbidden, not_found
from perpetuo.control.permissions import Grant
from perpetuo.control.plane import ControlPlane
from perpetuo.control.roles import permissions_of
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.repos.api_keys import touch_owned
from perpetuo.store.schema import memberships, users, workspaces
from perpetuo.store.timeutil import iso

RoleName = Literal["owner", "admin", "member", "viewer"]  # invites give a built-in role


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(
        min_length=1,
        max_length=16,
        description="owner, admin, member, viewer, or the name of one of the workspace's "
        "custom roles",
    )


def member_view(row: Any) -> dict[str, Any]:
    return {
        "object": "member",
        "workspace_id": row.workspace_id,
        "user_id": row.id,
        "email": row.email,
        "name": row.name,
        "role": row.role,
        "joined_at": iso(row.created_at),
    }


def _members(workspace_id: str) -> Any:
    """Members with their account details, shaped for keyset pagination (`id`, `created_at`)."""
    return (
        select(
            memberships.c.user_id.label("id"),
            memberships.c.workspace_id,
            memberships.c.role,
            memberships.c.created_at,
            users.c.email,
            users.c.name,
        )
        .join(users, users.c.id == memberships.c.user_id)
        .where(memberships.c.workspace_id == workspace_id)
        .subquery()
    )


async def list_members(
    plane: ControlPlane, actor: Actor, workspace_id: str, *, limit: int, cursor: str | None
) -> Page:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "workspace.read")
        members = _members(workspace_id)
        query = newest_first(select(members), members, cursor, limit)  # type: ignore[arg-type]
        return to_page((await conn.execute(query)).all(), limit)


async def _target(conn: AsyncConnection, workspace_id: str, user_id: str) -> Any:
    members = _members(workspace_id)
    row = (await conn.execute(select(members).where(members.c.id == user_id))).first()
    if row is None:
        raise not_found("Member")
    return row


async def _lock(conn: AsyncConnection, workspace_id: str) -> None:
    """Serialize membership changes per workspace, so two owners cannot both step down."""
    await conn.execute(
        select(workspaces.c.id).where(workspaces.c.id == workspace_id).with_for_update()
    )


async def _keep_an_owner(
    conn: AsyncConnection, workspace_id: str, current: Grant, field: str | None
) -> None:
    if current.role != Role.OWNER.label:
        return
    owners = await conn.scalar(
        select(func.count())
        .select_from(memberships)
        .where(memberships.c.workspace_id == workspace_id, memberships.c.role == Role.OWNER.label)
    )
    if (owners or 0) <= 1:
        raise conflict(
            "A workspace must keep at least one owner: make someone else an owner first.", field
        )


def _high(grant: Grant) -> bool:
    rank = grant.rank
    return rank is not None and rank >= Role.ADMIN


def _may_manage(actor: Grant, current: Grant, new: Grant | None) -> None:
    if not actor.allows("members.manage"):
        raise forbidden("This needs the members.manage permission in this workspace.")
    if actor.rank != Role.OWNER and (_high(current) or (new is not None and _high(new))):
        raise forbidden("Only owners can grant, change or remove the owner and admin roles.")
    for grant in (current, new):
        if grant is not None and not actor.covers(grant.permissions):
            raise forbidden(
                f"The role {grant.role!r} has permissions you lack, so you cannot grant, "
                "change or remove it."
            )


async def _grant_of(conn: AsyncConnection, workspace_id: str, role: str) -> Grant:
    return Grant(role, await permissions_of(conn, workspace_id, role))


async def change_role(
    plane: ControlPlane, actor: Actor, workspace_id: str, user_id: str, spec: RoleChange
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        actor_grant = await require(conn, actor, workspace_id, "workspace.read")
        await _lock(conn, workspace_id)
        row = await _target(conn, workspace_id, user_id)
        new = await _grant_of(conn, workspace_id, spec.role)
        if new.role == row.role:
            return member_view(row)
        current = await _grant_of(conn, workspace_id, row.role)
        lowering = new.permissions < current.permissions
        if not (user_id == actor.user_id and lowering):  # lowering one's own role is free
            _may_manage(actor_grant, current, new)
        await _keep_an_owner(conn, workspace_id, current, "role")
        await conn.execute(
            update(memberships)
            .where(memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id)
            .values(role=new.role)
        )
        after = member_view(await _target(conn, workspace_id, user_id))
        await audit.record(
            conn,
            actor,
            "member.role_change",
            workspace_id=workspace_id,
            target_type="member",
            target_id=user_id,
            before=member_view(row),
            after=after,
        )
    return after


async def remove_member(plane: ControlPlane, actor: Actor, workspace_id: str, user_id: str) -> None:
    async with plane.db.begin() as conn:
        actor_grant = await require(conn, actor, workspace_id, "workspace.read")
        await _lock(conn, workspace_id)
        row = await _target(conn, workspace_id, user_id)
        current = await _grant_of(conn, workspace_id, row.role)
        leaving = user_id == actor.user_id
        if not leaving:
            _may_manage(actor_grant, current, None)
        await _keep_an_owner(conn, workspace_id, current, None)
        await conn.execute(
            delete(memberships).where(
                memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
            )
        )
        keys = await touch_owned(conn, user_id, workspace_id)
        await audit.record(
            conn,
            actor,
            "member.leave" if leaving else "member.remove",
            workspace_id=workspace_id,
            target_type="member",
            target_id=user_id,
            before=member_view(row),
            after={"api_keys_affected": len(keys)},
        )
    await owner_changed(plane, keys)
