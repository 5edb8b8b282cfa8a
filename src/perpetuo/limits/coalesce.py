"""Calls to Redis that arrive together share one round trip.

Each request's admission is one script call; under load, most of its cost is the client
library's work per call, not Redis's. A `Coalescer` sends a call at once when none is in
flight for its group (one workspace's hash slot), and otherwise queues it: when the call in
flight returns, everything queued meanwhile goes in one call. A request alone pays no wait;
under load, N requests share one call. The script handles each request of a batch in turn,
exactly as if it had come alone, so batching changes no decision.

`linger` holds the first call of a batch that long before sending (for settlement, which
is off the response path and may wait a few milliseconds to share its call with more).
`wait_bound` is the longest a queued caller waits for its batch (its own call, sent from
its own task, is bounded by `send`, which must bound itself).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Send = Callable[[list[T]], Awaitable[list[R]]]


class Coalescer(Generic[T, R]):
    def __init__(
        self,
        send: Send[T, R],
        *,
        max_batch: int = 64,
        linger: float = 0.0,
        wait_bound: float | None = None,
    ) -> None:
        self._send = send
        self.max_batch = max_batch
        self.linger = linger
        self.wait_bound = wait_bound
        self._queued: dict[Hashable, list[tuple[T, asyncio.Future[R]]]] = {}
        self._busy: set[Hashable] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # round trips made (for tests and figures)

    async def call(self, group: Hashable, item: T) -> R:
        """`item`'s result, from a call it may share with others of its `group`."""
        if group in self._busy or self.linger:
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._queued.setdefault(group, []).append((item, future))
            if group not in self._busy:
                self._busy.add(group)
                self._spawn(self._drain(group, self.linger))
            if self.wait_bound is None:
                return await future
            async with asyncio.timeout(self.wait_bound):
                return await future
        # Nothing in flight for this group: send now, from this task (no task to create).
        self._busy.add(group)
        try:
            self.calls += 1
            (result,) = await self._send([item])
        finally:
            if self._queued.get(group):
                self._spawn(self._drain(group, 0.0))  # what came meanwhile goes next
            else:
                self._busy.discard(group)
        return result

    async def _drain(self, group: Hashable, linger: float) -> None:
        """Send what is queued for `group`, batch after batch, until nothing is left."""
        try:
            if linger:
                await asyncio.sleep(linger)
            while queued := self._queued.pop(group, None):
                queued = [entry for entry in queued if not entry[1].done()]  # gave up: not sent
                batch, rest = queued[: self.max_batch], queued[self.max_batch :]
                if rest:
                    self._queued[group] = rest
                if not batch:
                    continue
                self.calls += 1
                try:
                    results = await self._send([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # its caller may have given up (cancelled)
                        future.set_result(result)
        finally:
            self._busy.discard(group)
            for _, future in self._queued.pop(group, []):  # only when cancelled at shutdown
                future.cancel()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
