"""The prepaid credit ledger: entries are only ever added; a balance is their sum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, insert, select

from perpetuo.store.aio import AsyncConnection
from perpetuo.store.schema import credit_ledger


async def balance(conn: AsyncConnection, workspace_id: str) -> int:
    """The workspace's balance in micro-USD."""
    total = await conn.scalar(
        select(func.coalesce(func.sum(credit_ledger.c.amount_micros), 0)).where(
            credit_ledger.c.workspace_id == workspace_id
        )
    )
    return int(total or 0)


async def add_entries(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of workspace_id, kind (grant | usage | adjustment), amount_micros, note,
    actor_id, created_at."""
    if rows:
        await conn.execute(insert(credit_ledger), list(rows))


async def add_entry(conn: AsyncConnection, row: dict[str, Any]) -> Any:
    """One entry; returns it as stored (with its id)."""
    result = await conn.execute(insert(credit_ledger).values(**row).returning(credit_ledger))
    return result.one()


async def totals(conn: AsyncConnection, workspace_id: str) -> tuple[int, int]:
    """(credit granted, credit used) in micro-USD: grants and adjustments net, usage entries
    as a positive amount. Their difference is the balance."""
    is_usage = credit_ledger.c.kind == "usage"
    amount = credit_ledger.c.amount_micros
    granted, used = (
        await conn.execute(
            select(
                func.coalesce(func.sum(case((is_usage, 0), else_=amount)), 0),
                func.coalesce(func.sum(case((is_usage, -amount), else_=0)), 0),
            ).where(credit_ledger.c.workspace_id == workspace_id)
        )
    ).one()
    return int(granted), int(used)
