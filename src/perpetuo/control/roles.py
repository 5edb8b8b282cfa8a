"""Custom roles: a workspace's named sets of permissions (control/permissions.py).

Holders of `roles.manage` create, change and delete them, and only with permissions they
hold themselves, so no one makes a role stronger than their own. Members are given a custom
role like a built-in one (control/members.py). Renaming a role renames it for its members;
deleting one still held by members is refused. Every change is audited.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, insert, select, update

from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.errors import conflict, forbidden, invalid, not_found
from perpetuo.control.permissions import BUILT_IN, PERMISSIONS, Grant, rank_of, unknown
from perpetuo.control.plane import ControlPlane
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.role_tables import workspace_roles
from perpetuo.store.schema import memberships
from perpetuo.store.timeutil import iso, utcnow

_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,15}$")


def _permissions(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if bad := unknown(value):
        raise ValueError(f"unknown permission {bad[0]!r} (see GET /api/permissions)")
    return sorted(set(value))


class RoleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Annotated[str, Field(max_length=500)] | None = None
    permissions: list[str] | None = None

    _check_permissions = field_validator("permissions")(_permissions)


class RoleCreate(RoleFields):
    name: str = Field(
        description="2 to 16 lower-case letters, digits, - or _, starting with a letter; "
        "not a built-in role's name"
    )
    permissions: list[str] = Field(description="Permission names (GET /api/permissions)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _valid_name(value)


class RoleUpdate(RoleFields):
    name: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _valid_name(value)


def _valid_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("2 to 16 lower-case letters, digits, - or _, starting with a letter")
    if value in BUILT_IN:
        raise ValueError(f"{value!r} is a built-in role")
    return value


def role_view(row: Any, members: int = 0) -> dict[str, Any]:
    permissions = frozenset(row.permissions or ())
    rank = rank_of(permissions)
    return {
        "object": "role",
        "id": row.id,
        "workspace_id": row.workspace_id,
        "name": row.name,
        "description": row.description,
        "permissions": sorted(permissions),
        "built_in": False,
        # The built-in role whose checks it passes where a check asks for one.
        "counts_as": rank.label if rank is not None else None,
        "members": members,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def built_in_views() -> list[dict[str, Any]]:
    return [
        {"object": "role", "name": name, "built_in": True, "permissions": sorted(perms)}
        for name, perms in BUILT_IN.items()
    ]


def permission_views() -> list[dict[str, Any]]:
    return [
        {"object": "permission", "name": name, "least_built_in_role": least.label, "allows": text}
        for name, (least, text) in PERMISSIONS.items()
    ]


async def _row(conn: AsyncConnection, workspace_id: str, role_id: str) -> Any:
    row = (
        await conn.execute(
            select(workspace_roles).where(
                workspace_roles.c.workspace_id == workspace_id, workspace_roles.c.id == role_id
            )
        )
    ).first()
    if row is None:
        raise not_found("Role")
    return row


async def _holders(conn: AsyncConnection, workspace_id: str, name: str) -> int:
    count = await conn.scalar(
        select(func.count())
        .select_from(memberships)
        .where(memberships.c.workspace_id == workspace_id, memberships.c.role == name)
    )
    return count or 0


def _no_escalation(grant: Grant, permissions: list[str]) -> None:
    missing = sorted(set(permissions) - grant.permissions)
    if missing:
        raise forbidden(
            f"A role can only hold permissions you have yourself; you lack {', '.join(missing)}."
        )


async def _name_free(conn: AsyncConnection, workspace_id: str, name: str) -> None:
    taken = await conn.scalar(
        select(workspace_roles.c.id).where(
            workspace_roles.c.workspace_id == workspace_id, workspace_roles.c.name == name
        )
    )
    if taken is not None:
        raise conflict(f"This workspace already has a role named {name!r}.", "name")


async def list_roles(plane: ControlPlane, actor: Actor, workspace_id: str) -> list[dict[str, Any]]:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "workspace.read")
        rows = (
            await conn.execute(
                select(workspace_roles)
                .where(workspace_roles.c.workspace_id == workspace_id)
                .order_by(workspace_roles.c.name)
            )
        ).all()
        return [role_view(r, await _holders(conn, workspace_id, r.name)) for r in rows]


async def get_role(
    plane: ControlPlane, actor: Actor, workspace_id: str, role_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "workspace.read")
        row = await _row(conn, workspace_id, role_id)
        return role_view(row, await _holders(conn, workspace_id, row.name))


async def create_role(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: RoleCreate
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        grant = await require(conn, actor, workspace_id, "roles.manage")
        _no_escalation(grant, spec.permissions)
        await _name_free(conn, workspace_id, spec.name)
        now = utcnow()
        role_id = new_id("role")
        await conn.execute(
            insert(workspace_roles).values(
                id=role_id,
                workspace_id=workspace_id,
                name=spec.name,
                description=spec.description or "",
                permissions=spec.permissions,
                created_at=now,
                updated_at=now,
            )
        )
        view = role_view(await _row(conn, workspace_id, role_id))
        await audit.record(
            conn,
            actor,
            "role.create",
            workspace_id=workspace_id,
            target_type="role",
            target_id=role_id,
            after=view,
        )
    return view


async def update_role(
    plane: ControlPlane, actor: Actor, workspace_id: str, role_id: str, spec: RoleUpdate
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        grant = await require(conn, actor, workspace_id, "roles.manage")
        row = await _row(conn, workspace_id, role_id)
        # Changing a role stronger than one's own would be a way around the rule above.
        _no_escalation(grant, list(row.permissions or ()))
        values: dict[str, Any] = {}
        if spec.permissions is not None:
            _no_escalation(grant, spec.permissions)
            values["permissions"] = spec.permissions
        if spec.description is not None:
            values["description"] = spec.description
        if spec.name is not None and spec.name != row.name:
            await _name_free(conn, workspace_id, spec.name)
            values["name"] = spec.name
            await conn.execute(
                update(memberships)
                .where(memberships.c.workspace_id == workspace_id, memberships.c.role == row.name)
                .values(role=spec.name)
            )
        holders = await _holders(conn, workspace_id, values.get("name", row.name))
        before = role_view(row, holders)
        if values:
            await conn.execute(
                update(workspace_roles)
                .where(workspace_roles.c.id == role_id)
                .values(**values, updated_at=utcnow())
            )
        after = role_view(await _row(conn, workspace_id, role_id), holders)
        await audit.record(
            conn,
            actor,
            "role.update",
            workspace_id=workspace_id,
            target_type="role",
            target_id=role_id,
            before=before,
            after=after,
        )
    return after


async def delete_role(plane: ControlPlane, actor: Actor, workspace_id: str, role_id: str) -> None:
    async with plane.db.begin() as conn:
        grant = await require(conn, actor, workspace_id, "roles.manage")
        row = await _row(conn, workspace_id, role_id)
        _no_escalation(grant, list(row.permissions or ()))
        if holders := await _holders(conn, workspace_id, row.name):
            raise conflict(
                f"{holders} member(s) hold the role {row.name!r}: give them another role first."
            )
        await conn.execute(delete(workspace_roles).where(workspace_roles.c.id == role_id))
        await audit.record(
            conn,
            actor,
            "role.delete",
            workspace_id=workspace_id,
            target_type="role",
            target_id=role_id,
            before=role_view(row),
        )


async def permissions_of(conn: AsyncConnection, workspace_id: str, name: str) -> frozenset[str]:
    """A role's permissions by name, built-in or the workspace's; 422 if it has none such."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    stored = await conn.scalar(
        select(workspace_roles.c.permissions).where(
            workspace_roles.c.workspace_id == workspace_id, workspace_roles.c.name == name
        )
    )
    if stored is None:
        raise invalid(f"This workspace has no role named {name!r}.", "role")
    return frozenset(stored)
