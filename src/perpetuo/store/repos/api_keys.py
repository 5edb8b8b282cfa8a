"""API key rows: lookup by hash for the data plane, and the control plane's CRUD.

Every read of a key carries its owner's standing (`owner_disabled_at`, `owner_in_workspace`),
so the data plane caches it with the key and the control plane shows it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, exists, func, insert, or_, select, update

from perpetuo.store.aio import AsyncConnection
from perpetuo.store.schema import api_keys, memberships, teams, users
from perpetuo.store.timeutil import utcnow


def with_owner() -> Select[Any]:
    """Key rows plus their owner's standing: disabled or not, and still in the key's
    workspace (platform administrators count as in every workspace). No owner: both null.
    Also the key's effective team (its own, else its owner's), that team's limits and the
    owner's own limits as a member, which the data plane caches with the key."""
    member = exists().where(
        memberships.c.workspace_id == api_keys.c.workspace_id,
        memberships.c.user_id == api_keys.c.owner_id,
    )
    owner_membership = memberships.alias("owner_membership")
    team_id = func.coalesce(api_keys.c.team_id, owner_membership.c.team_id)
    joined = (
        api_keys.outerjoin(users, users.c.id == api_keys.c.owner_id)
        .outerjoin(
            owner_membership,
            and_(
                owner_membership.c.workspace_id == api_keys.c.workspace_id,
                owner_membership.c.user_id == api_keys.c.owner_id,
            ),
        )
        .outerjoin(
            teams, and_(teams.c.id == team_id, teams.c.workspace_id == api_keys.c.workspace_id)
        )
    )
    return select(
        api_keys,
        users.c.disabled_at.label("owner_disabled_at"),
        or_(users.c.is_superadmin, member).label("owner_in_workspace"),
        teams.c.id.label("effective_team_id"),
        teams.c.limits.label("team_limits"),
        owner_membership.c.limits.label("member_limits"),
    ).select_from(joined)


async def find_by_hash(conn: AsyncConnection, key_hash: str) -> Row[Any] | None:
    query = with_owner().where(
        or_(api_keys.c.key_hash == key_hash, api_keys.c.previous_hash == key_hash)
    )
    return (await conn.execute(query)).first()


async def find_by_hashes(conn: AsyncConnection, hashes: Sequence[str]) -> list[Row[Any]]:
    """The rows any of `hashes` (current or previous) belongs to, in one query."""
    query = with_owner().where(
        or_(api_keys.c.key_hash.in_(hashes), api_keys.c.previous_hash.in_(hashes))
    )
    return list((await conn.execute(query)).all())


async def get(conn: AsyncConnection, workspace_id: str, key_id: str) -> Row[Any] | None:
    query = with_owner().where(api_keys.c.workspace_id == workspace_id, api_keys.c.id == key_id)
    return (await conn.execute(query)).first()


async def touch_owned(
    conn: AsyncConnection, owner_id: str, workspace_id: str | None = None
) -> list[str]:
    """Mark the owner's keys (in one workspace, or everywhere) as changed, so every instance
    re-reads them with the owner's new standing; returns their ids."""
    query = select(api_keys.c.id).where(api_keys.c.owner_id == owner_id)
    if workspace_id is not None:
        query = query.where(api_keys.c.workspace_id == workspace_id)
    key_ids = list((await conn.execute(query)).scalars())
    if key_ids:
        await conn.execute(
            update(api_keys).where(api_keys.c.id.in_(key_ids)).values(updated_at=utcnow())
        )
    return key_ids


async def find_by_id_or_prefix(conn: AsyncConnection, value: str) -> list[Row[Any]]:
    query = select(api_keys).where(or_(api_keys.c.id == value, api_keys.c.prefix == value))
    return list((await conn.execute(query)).all())


async def list_for_workspace(
    conn: AsyncConnection,
    workspace_id: str,
    *,
    limit: int,
    after: str | None = None,
    owner_id: str | None = None,
    include_revoked: bool = True,
) -> Sequence[Row[Any]]:
    query = select(api_keys).where(api_keys.c.workspace_id == workspace_id)
    if owner_id is not None:
        query = query.where(api_keys.c.owner_id == owner_id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    if after:
        query = query.where(api_keys.c.id > after)
    return (await conn.execute(query.order_by(api_keys.c.id).limit(limit))).all()


async def insert_key(conn: AsyncConnection, values: dict[str, Any]) -> None:
    now = utcnow()
    await conn.execute(insert(api_keys).values(created_at=now, updated_at=now, **values))


async def update_key(conn: AsyncConnection, key_id: str, values: dict[str, Any]) -> None:
    """Every change bumps updated_at, which other instances poll to drop cached keys."""
    await conn.execute(
        update(api_keys).where(api_keys.c.id == key_id).values(updated_at=utcnow(), **values)
    )


async def changed_since(conn: AsyncConnection, since: dt.datetime) -> list[str]:
    query = select(api_keys.c.id).where(api_keys.c.updated_at > since)
    return list((await conn.execute(query)).scalars())


async def record_last_used(conn: AsyncConnection, used: Iterable[tuple[str, dt.datetime]]) -> None:
    """Batched from memory; deliberately leaves updated_at alone (it is not a change)."""
    rows = [{"key_id": key_id, "used_at": when} for key_id, when in used]
    if not rows:
        return
    statement = (
        update(api_keys)
        .where(api_keys.c.id == bindparam("key_id"))
        .values(last_used_at=bindparam("used_at"))
    )
    await conn.execute(statement, rows)


async def count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(api_keys))).scalar_one())
