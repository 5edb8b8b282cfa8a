"""Teams (departments) inside a workspace: create, list, rename, delete; who is in each.

A member and an API key belong to at most one team. A key counts to its own team when it
has one, else to its owner's: the hierarchy a request is limited by is workspace → team →
user → key (limits/planning.py). Anyone in the workspace reads teams; admins and owners
change them. Every change is audited.

The data plane reads a key's team, the team's limits and the owner's own limits with the key
(store/repos/api_keys.py), so a change here marks every key it affects as changed: each
instance drops them from its key cache and reads them again, with no query per request.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from perpetuo.control import audit
from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.api_keys import KeyLimits, owner_changed
from perpetuo.control.errors import conflict, not_found
from perpetuo.control.plane import ControlPlane
from perpetuo.control.team_spend import period_spend
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.repos import teams as team_repo
from perpetuo.store.schema import api_keys, memberships, teams, users
from perpetuo.store.timeutil import iso, utcnow

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=500)]


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    limits: KeyLimits | None = Field(
        default=None, description="The team's rate limits, quotas and budget, shared by all"
    )


class TeamUpdate(BaseModel):
    """Only the fields given change; `limits: null` removes the team's limits."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    limits: KeyLimits | None = None


class MemberLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limits: KeyLimits | None = Field(
        description="The member's own limits, over the workspace's per-user limits; null: none"
    )


def team_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "team",
        "workspace_id": row.workspace_id,
        "name": row.name,
        "description": row.description,
        "limits": row.limits or {},
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def _team(conn: AsyncConnection, workspace_id: str, team_id: str) -> Any:
    row = await team_repo.find(conn, workspace_id, team_id)
    if row is None:
        raise not_found("Team")
    return row


async def list_teams(
    plane: ControlPlane, actor: Actor, workspace_id: str, *, limit: int, cursor: str | None
) -> Page:
    async with plane.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.VIEWER)
        query = newest_first(
            select(teams).where(teams.c.workspace_id == workspace_id), teams, cursor, limit
        )
        return to_page((await conn.execute(query)).all(), limit)


async def get_team(
    plane: ControlPlane, actor: Actor, workspace_id: str, team_id: str
) -> dict[str, Any]:
    """The team with its members, its keys (its own and its members' without a team of
    their own) and its spend in its budget's current period."""
    async with plane.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.VIEWER)
        row = await _team(conn, workspace_id, team_id)
        members = (
            await conn.execute(
                select(
                    memberships.c.user_id,
                    memberships.c.role,
                    memberships.c.limits,
                    users.c.email,
                    users.c.name,
                )
                .join(users, users.c.id == memberships.c.user_id)
                .where(memberships.c.workspace_id == workspace_id, memberships.c.team_id == team_id)
                .order_by(users.c.email)
            )
        ).all()
        keys = (
            await conn.execute(
                select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.last4)
                .add_columns(api_keys.c.owner_id, api_keys.c.team_id, api_keys.c.revoked_at)
                .where(api_keys.c.workspace_id == workspace_id, _counts_to(workspace_id, team_id))
                .order_by(api_keys.c.name)
            )
        ).all()
        spend = await period_spend(conn, workspace_id, "team", team_id, row.limits)
    return {
        **team_view(row),
        "members": [
            {
                "user_id": m.user_id,
                "email": m.email,
                "name": m.name,
                "role": m.role,
                "limits": m.limits or {},
            }
            for m in members
        ],
        "keys": [
            {
                "id": k.id,
                "name": k.name,
                "display": f"{k.prefix}…{k.last4}",
                "owner_id": k.owner_id,
                "assigned": k.team_id == team_id,  # the key's own team, not its owner's
                "revoked": k.revoked_at is not None,
            }
            for k in keys
        ],
        "spend": spend,
    }


def _counts_to(workspace_id: str, team_id: str) -> Any:
    """Keys whose requests count to the team: in it, or without a team and owned by one of
    its members."""
    in_team = select(memberships.c.user_id).where(
        memberships.c.workspace_id == workspace_id, memberships.c.team_id == team_id
    )
    return or_(
        api_keys.c.team_id == team_id,
        and_(api_keys.c.team_id.is_(None), api_keys.c.owner_id.in_(in_team)),
    )


async def _touch_team_keys(conn: AsyncConnection, workspace_id: str, team_id: str) -> list[str]:
    """Mark the keys counting to the team as changed (instances re-read them); their ids."""
    query = select(api_keys.c.id).where(
        api_keys.c.workspace_id == workspace_id, _counts_to(workspace_id, team_id)
    )
    key_ids = list((await conn.execute(query)).scalars())
    if key_ids:
        await conn.execute(
            update(api_keys).where(api_keys.c.id.in_(key_ids)).values(updated_at=utcnow())
        )
    return key_ids


async def _touch_owned(conn: AsyncConnection, workspace_id: str, user_id: str) -> list[str]:
    query = select(api_keys.c.id).where(
        api_keys.c.workspace_id == workspace_id, api_keys.c.owner_id == user_id
    )
    key_ids = list((await conn.execute(query)).scalars())
    if key_ids:
        await conn.execute(
            update(api_keys).where(api_keys.c.id.in_(key_ids)).values(updated_at=utcnow())
        )
    return key_ids


async def create_team(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: TeamCreate
) -> dict[str, Any]:
    now = utcnow()
    team_id = new_id("team")
    values = {
        "id": team_id,
        "workspace_id": workspace_id,
        "name": spec.name.strip(),
        "description": spec.description,
        "limits": spec.limits.model_dump(exclude_none=True) if spec.limits else {},
        "created_at": now,
        "updated_at": now,
    }
    try:
        async with plane.db.begin() as conn:
            await require_role(conn, actor, workspace_id, Role.ADMIN)
            await conn.execute(insert(teams).values(**values))
            view = team_view(await _team(conn, workspace_id, team_id))
            await audit.record(
                conn,
                actor,
                "team.create",
                workspace_id=workspace_id,
                target_type="team",
                target_id=team_id,
                after=view,
            )
    except IntegrityError:
        raise conflict("This workspace already has a team of that name.", "name") from None
    return view


async def update_team(
    plane: ControlPlane, actor: Actor, workspace_id: str, team_id: str, spec: TeamUpdate
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if spec.name is not None:
        values["name"] = spec.name.strip()
    if spec.description is not None:
        values["description"] = spec.description
    if "limits" in spec.model_fields_set:
        values["limits"] = spec.limits.model_dump(exclude_none=True) if spec.limits else {}
    keys: list[str] = []
    try:
        async with plane.db.begin() as conn:
            await require_role(conn, actor, workspace_id, Role.ADMIN)
            row = await _team(conn, workspace_id, team_id)
            before = team_view(row)
            if values:
                await conn.execute(
                    update(teams).where(teams.c.id == team_id).values(updated_at=utcnow(), **values)
                )
            after = team_view(await _team(conn, workspace_id, team_id))
            if after["limits"] != before["limits"]:
                keys = await _touch_team_keys(conn, workspace_id, team_id)
            await audit.record(
                conn,
                actor,
                "team.update",
                workspace_id=workspace_id,
                target_type="team",
                target_id=team_id,
                before=before,
                after=after,
            )
    except IntegrityError:
        raise conflict("This workspace already has a team of that name.", "name") from None
    await owner_changed(plane, keys)
    return after


async def delete_team(plane: ControlPlane, actor: Actor, workspace_id: str, team_id: str) -> None:
    """Its members and keys stay, in no team; its usage stays in the analytics."""
    async with plane.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        row = await _team(conn, workspace_id, team_id)
        keys = await _touch_team_keys(conn, workspace_id, team_id)
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.workspace_id == workspace_id, api_keys.c.team_id == team_id)
            .values(team_id=None)
        )
        await conn.execute(
            update(memberships)
            .where(memberships.c.workspace_id == workspace_id, memberships.c.team_id == team_id)
            .values(team_id=None)
        )
        await conn.execute(delete(teams).where(teams.c.id == team_id))
        await audit.record(
            conn,
            actor,
            "team.delete",
            workspace_id=workspace_id,
            target_type="team",
            target_id=team_id,
            before=team_view(row),
            after={"api_keys_affected": len(keys)},
        )
    await owner_changed(plane, keys)


async def _membership(conn: AsyncConnection, workspace_id: str, user_id: str) -> Any:
    query = select(memberships).where(
        memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise not_found("Member")
    return row


async def set_member_team(
    plane: ControlPlane, actor: Actor, workspace_id: str, team_id: str, user_id: str, join: bool
) -> dict[str, Any]:
    """Put a member in the team (moving them out of any other), or take them out of it."""
    async with plane.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        await _team(conn, workspace_id, team_id)
        row = await _membership(conn, workspace_id, user_id)
        if not join and row.team_id != team_id:
            raise not_found("Team member")
        new = team_id if join else None
        keys: list[str] = []
        if row.team_id != new:
            await conn.execute(
                update(memberships)
                .where(memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id)
                .values(team_id=new)
            )
            keys = await _touch_owned(conn, workspace_id, user_id)
        after = {"user_id": user_id, "team_id": new}
        await audit.record(
            conn,
            actor,
            "team.member_add" if join else "team.member_remove",
            workspace_id=workspace_id,
            target_type="member",
            target_id=user_id,
            before={"user_id": user_id, "team_id": row.team_id},
            after=after,
        )
    await owner_changed(plane, keys)
    return {"object": "team_membership", "workspace_id": workspace_id, **after}


async def get_member_limits(
    plane: ControlPlane, actor: Actor, workspace_id: str, user_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.VIEWER)
        row = await _membership(conn, workspace_id, user_id)
        spend = await period_spend(conn, workspace_id, "user", user_id, row.limits)
    return _member_limits_view(workspace_id, row, spend)


def _member_limits_view(workspace_id: str, row: Any, spend: Any = None) -> dict[str, Any]:
    view = {
        "object": "member_limits",
        "workspace_id": workspace_id,
        "user_id": row.user_id,
        "team_id": row.team_id,
        "limits": row.limits or {},
    }
    return view if spend is None else {**view, "spend": spend}


async def set_member_limits(
    plane: ControlPlane, actor: Actor, workspace_id: str, user_id: str, spec: MemberLimits
) -> dict[str, Any]:
    """A member's own limits, laid over the workspace's per-user limits."""
    limits = spec.limits.model_dump(exclude_none=True) if spec.limits else None
    async with plane.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        row = await _membership(conn, workspace_id, user_id)
        await conn.execute(
            update(memberships)
            .where(memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id)
            .values(limits=limits or None)
        )
        after_row = await _membership(conn, workspace_id, user_id)
        keys = await _touch_owned(conn, workspace_id, user_id)
        after = _member_limits_view(workspace_id, after_row)
        await audit.record(
            conn,
            actor,
            "member.limits_change",
            workspace_id=workspace_id,
            target_type="member",
            target_id=user_id,
            before=_member_limits_view(workspace_id, row),
            after=after,
        )
    await owner_changed(plane, keys)
    return after
