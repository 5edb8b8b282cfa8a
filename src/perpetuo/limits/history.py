"""Where counters that must survive restarts start from: the store's usage history.

Token quotas and budget spend start from the hourly usage rollups (the request-log writer
keeps them current); a credit balance from the credit ledger. These are read only when a
counter is missing (first use of a period, a restart, or Redis losing its data), never per
request. Usage this instance settled but has not yet written to the ledger counts as spent.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from perpetuo.limits.ledger import CreditLedgerWriter
from perpetuo.limits.planning import SeedSource
from perpetuo.store.database import Database
from perpetuo.store.repos.credits import balance
from perpetuo.store.repos.usage_sums import usage_sums


class UsageHistory(Protocol):
    async def usage(
        self,
        workspace_id: str,
        dim: str,
        value: str,
        since: dt.datetime | None,
        until: dt.datetime | None,
    ) -> tuple[int, int]:
        """(tokens, cost micro-USD) used in [since, until)."""
        ...

    async def credit_balance(self, workspace_id: str) -> int: ...


class DatabaseHistory:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def usage(
        self,
        workspace_id: str,
        dim: str,
        value: str,
        since: dt.datetime | None,
        until: dt.datetime | None,
    ) -> tuple[int, int]:
        async with self.db.connect() as conn:
            return await usage_sums(conn, workspace_id, dim, value, since, until)

    async def credit_balance(self, workspace_id: str) -> int:
        async with self.db.connect() as conn:
            return await balance(conn, workspace_id)


class NoHistory:
    """Every counter starts at zero and no credit is ever granted (tests, no database)."""

    async def usage(
        self,
        workspace_id: str,
        dim: str,
        value: str,
        since: dt.datetime | None,
        until: dt.datetime | None,
    ) -> tuple[int, int]:
        return 0, 0

    async def credit_balance(self, workspace_id: str) -> int:
        return 0


async def seed_value(
    history: UsageHistory, source: SeedSource, ledger: CreditLedgerWriter | None
) -> int:
    """The starting value of a missing counter (a credit counter holds -balance)."""
    if source.measure == "credits":
        unwritten = ledger.pending(source.workspace_id) if ledger else 0
        return unwritten - await history.credit_balance(source.workspace_id)
    tokens, cost = await history.usage(
        source.workspace_id, source.dim, source.value, source.since, source.until
    )
    return tokens if source.measure == "tokens" else cost
