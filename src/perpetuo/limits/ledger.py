"""Writing credit deductions to the ledger in batches, off the request path.

Settled request costs are summed per workspace and written every few seconds as one `usage`
entry each, so the ledger stays an append-only record while the hot path never waits on the
database. If the database is down the sums wait for the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from perpetuo.store.database import Database
from perpetuo.store.repos.credits import add_entries
from perpetuo.store.timeutil import utcnow

log = logging.getLogger("perpetuo.limits.ledger")


class CreditLedgerWriter:
    def __init__(self, db: Database, interval: float = 5.0) -> None:
        self.db = db
        self.interval = interval
        self._pending: dict[str, int] = defaultdict(int)  # workspace -> micro-USD to deduct
        self._requests: dict[str, int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None

    def deduct(self, workspace_id: str, micros: int) -> None:
        self._pending[workspace_id] += micros
        self._requests[workspace_id] += 1

    def pending(self, workspace_id: str) -> int:
        """Deductions settled here but not yet in the ledger."""
        return self._pending.get(workspace_id, 0)

    async def flush(self) -> None:
        pending, self._pending = self._pending, defaultdict(int)
        requests, self._requests = self._requests, defaultdict(int)
        now = utcnow()
        rows = [
            {
                "workspace_id": workspace_id,
                "kind": "usage",
                "amount_micros": -amount,
                "note": f"usage of {requests[workspace_id]} requests",
                "actor_id": None,
                "created_at": now,
            }
            for workspace_id, amount in pending.items()
            if amount
        ]
        if not rows:
            return
        try:
            async with self.db.begin() as conn:
                await add_entries(conn, rows)
        except Exception as exc:  # keep the sums for the next flush
            log.warning("could not write credit usage to the ledger (%s); will retry", exc)
            for workspace_id, amount in pending.items():
                self._pending[workspace_id] += amount
                self._requests[workspace_id] += requests[workspace_id]

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_forever(), name="credit-ledger")

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        for workspace_id, amount in self._pending.items():
            if amount:
                log.error(
                    "credit usage of workspace %s not written: %d micro-USD", workspace_id, amount
                )
