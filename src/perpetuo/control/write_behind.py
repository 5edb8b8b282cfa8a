"""Write-behind: rows queued on the request path, written in batches by a background task.

Stored Responses answers and chat-session turns are kept this way, so that a request never
waits for the database after its answer. What is queued but not yet written stays readable
(`unwritten()`), including the batch being written at that moment. A write that fails
because the database is unreachable is retried (the items stay readable meanwhile); one that
fails because of the rows themselves (a constraint, a value the database refuses) is split,
and only the rows that cannot be written are dropped, logged and counted — one bad row never
blocks the queue. The queue is bounded: past `max_pending` the oldest items are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from perpetuo.store.refusals import refused_rows, sqlstate

T = TypeVar("T")

log = logging.getLogger("perpetuo.store")


class WriteBehind(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        what: str,
        batch_size: int = 200,
        flush_interval: float = 0.05,
        retry_after: float = 1.0,
        max_pending: int = 100_000,
    ) -> None:
        self._write = write
        self._what = what  # for the log line of a failed write
        self._pending: list[T] = []
        self._writing: list[T] = []  # the batch being written now
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_after = retry_after
        self._max_pending = max_pending
        self.dropped = 0  # items that could not be written (for metrics and tests)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one write at a time (the loop, aclose, explicit flushes)
        self._task: asyncio.Task[None] | None = None

    def add(self, item: T) -> None:
        self._pending.append(item)
        if len(self._pending) >= self._batch_size:
            self._wake.set()
        if len(self._pending) > self._max_pending:  # the database is far behind: bound memory
            excess = len(self._pending) - self._max_pending
            del self._pending[:excess]
            self.dropped += excess
            log.error("dropped %d %s: the queue is full", excess, self._what)

    def unwritten(self) -> list[T]:
        """Queued items not yet in the database, oldest first."""
        return [*self._writing, *self._pending] if self._writing else list(self._pending)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(self._retry_after)

    async def flush(self) -> bool:
        """Write what is queued; False when the write failed (the items stay queued)."""
        async with self._lock:
            if not self._pending:
                return True
            batch = self._writing = self._pending
            self._pending = []
            try:
                await self._write(batch)
            except Exception as exc:
                if refused_rows(exc):
                    await self._one_by_one(batch)
                    return True
                # The type only: a driver's message may quote the rows (tenants' content).
                log.warning(
                    "writing %d %s failed, retrying: %s", len(batch), self._what, describe(exc)
                )
                self._pending[:0] = batch
                return False
            except BaseException:  # cancelled mid-write (shutdown): aclose writes it again
                self._pending[:0] = batch
                raise
            finally:
                self._writing = []
            return True

    async def _one_by_one(self, batch: list[T]) -> None:
        """A batch refused for its rows: write them singly, drop the ones refused."""
        for item in batch:
            try:
                await self._write([item])
            except Exception as exc:
                if not refused_rows(exc):
                    self._pending.append(item)  # unreachable now: retried with the next batch
                    continue
                self.dropped += 1
                log.error("dropped one of %s the database refuses: %s", self._what, describe(exc))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _ in range(3):
            if await self.flush():
                break


def describe(exc: BaseException) -> str:
    code = sqlstate(exc)
    return f"{type(exc).__name__} (SQLSTATE {code})" if code else type(exc).__name__
