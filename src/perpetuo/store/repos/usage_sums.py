"""Totals over the hourly usage rollups: what a key, user or workspace used in a period."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from perpetuo.store.aio import AsyncConnection
from perpetuo.store.schema import usage_rollups


async def usage_sums(
    conn: AsyncConnection,
    workspace_id: str,
    dim: str,
    value: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[int, int]:
    """(prompt + completion tokens, cost in micro-USD) of one rollup dimension value
    (`key`/key id, `user`/user id, `all`/"" for the whole workspace) in [since, until)."""
    r = usage_rollups.c
    query = select(
        func.coalesce(func.sum(r.prompt_tokens + r.completion_tokens), 0),
        func.coalesce(func.sum(r.cost_micros), 0),
    ).where(r.workspace_id == workspace_id, r.dim == dim, r.value == value)
    if since is not None:
        query = query.where(r.bucket >= since)
    if until is not None:
        query = query.where(r.bucket < until)
    tokens, cost = (await conn.execute(query)).one()
    return int(tokens), int(cost)
