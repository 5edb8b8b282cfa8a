"""Writing request logs and rollups in batches, idempotently (replays are safe)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from perpetuo.store.schema import request_logs, usage_rollups


def _insert(conn: AsyncConnection, table: Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def insert_new_logs(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """The common case: rows never written before (an id seen twice raises IntegrityError)."""
    if rows:
        await conn.execute(insert(request_logs), list(rows))


async def insert_logs(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert request log rows; returns the ids actually inserted (already-present ids, from
    a replayed batch, are skipped, so their rollups are not counted twice)."""
    if not rows:
        return set()
    statement = _insert(conn, request_logs).on_conflict_do_nothing(index_elements=["id"])
    result = await conn.execute(statement.returning(request_logs.c.id), list(rows))
    return set(result.scalars())


async def add_to_rollups(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Add each row's counters to its (workspace, hour, dimension, value) rollup."""
    if rows:
        await conn.execute(_rollup_upsert(conn.dialect.name), list(rows))


@functools.cache
def _rollup_upsert(dialect_name: str) -> Any:
    # Built once per dialect: constructing the expression costs more than the compiled-cache
    # lookup it feeds, and the writer runs it on every flush.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(usage_rollups)
    counters = [c.name for c in usage_rollups.c if not c.primary_key]
    return statement.on_conflict_do_update(
        index_elements=["workspace_id", "bucket", "dim", "value"],
        set_={name: usage_rollups.c[name] + statement.excluded[name] for name in counters},
    )
