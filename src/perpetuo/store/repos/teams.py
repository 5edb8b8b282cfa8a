"""Team rows: one team of one workspace, for whoever must check a team id it was given."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select

from perpetuo.store.aio import AsyncConnection
from perpetuo.store.schema import teams


async def find(conn: AsyncConnection, workspace_id: str, team_id: str) -> Row[Any] | None:
    """The team, only if it belongs to this workspace (another's ids are not found)."""
    query = select(teams).where(teams.c.workspace_id == workspace_id, teams.c.id == team_id)
    return (await conn.execute(query)).first()
