"""Settlements that could not reach Redis, sent again once it answers.

A settlement made while Redis is paused, down, or left alone after trouble is queued here and
sent when the guard's pause ends; if Redis fails again, it waits for the next pause to end.
Redis applies a request's settlement only while the ticket its admission left is there, and
removes it (lua.py): one that did reach Redis but whose reply was lost is a no-op when sent
again, so each settlement is applied once. The queue is bounded: past `MAX_PENDING` the
oldest is dropped, counted, and logged at most once a minute (its holds then expire).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from perpetuo.limits.backend import BackendUnavailable, LimitBackend, Settlement
from perpetuo.limits.guard import BackendGuard, LimitStats
from perpetuo.limits.redis_backend import RedisBackend
from perpetuo.observability.log_limit import EveryMinute

log = logging.getLogger("perpetuo.limits")

MAX_PENDING = 10_000  # settlements waiting for Redis, at most
BATCH = 256  # sent at once (they share script calls per workspace: coalesce.py)
RETRY_SECONDS = 0.5  # the shortest wait between two tries
Fired = Callable[[list[tuple[int, int]]], None]


@dataclass(frozen=True, slots=True)
class Pending:
    items: Sequence[Settlement]
    request_id: str
    fired: Fired  # what to do with the alerts the settlement crosses
    forwarded_ms: int | None = None  # settled by local counters then: usage to forward


class SettleRetries:
    def __init__(
        self,
        guard: BackendGuard,
        stats: LimitStats,
        clock: Callable[[], float],
        *,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._guard = guard
        self._stats = stats
        self._clock = clock  # wall clock, for the counters' `now`
        self.max_pending = max_pending
        self._queue: deque[Pending] = deque()
        self._task: asyncio.Task[None] | None = None
        self._warnings = EveryMinute(log)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued, and nothing being sent."""
        return not self._queue and (self._task is None or self._task.done())

    def add(self, pending: Pending) -> None:
        self._stats.settles_queued += 1
        self._queue.append(pending)
        self._trim()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self._queue:
            await asyncio.sleep(max(RETRY_SECONDS, self._guard.pause_left()))
            await self.send()

    async def send(self) -> None:
        """Send what is queued, batch after batch, until the queue is empty or Redis fails
        (what failed goes back to the head of the queue)."""
        backend = self._guard.primary
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            now_ms = int(self._clock() * 1000)
            try:
                results = await asyncio.gather(
                    *(_send(backend, pending, now_ms) for pending in batch),
                    return_exceptions=True,
                )
            except asyncio.CancelledError:  # stopping: sent or not, they may go again
                self._queue.extendleft(reversed(batch))
                raise
            failed: list[Pending] = []
            for pending, result in zip(batch, results, strict=True):
                if isinstance(result, BackendUnavailable):
                    failed.append(pending)
                elif isinstance(result, BaseException):
                    self._stats.settles_dropped += 1
                    log.error("limits: settlement of %s failed: %r", pending.request_id, result)
                else:
                    self._stats.settles_retried += 1
                    pending.fired(result)
            if failed:
                self._queue.extendleft(reversed(failed))
                self._trim()
                error = next(r for r in results if isinstance(r, BackendUnavailable))
                self._guard.failed(error)
                return

    def _trim(self) -> None:
        dropped = 0
        while len(self._queue) > self.max_pending:
            self._queue.popleft()
            dropped += 1
        if dropped:
            self._dropped(dropped, "the queue is full")

    def _dropped(self, count: int, why: str) -> None:
        self._stats.settles_dropped += count
        self._warnings.log(
            logging.WARNING,
            why,
            "limits: %d settlements dropped before reaching Redis (%s; %d so far); "
            "their reservations expire on their own",
            count,
            why,
            self._stats.settles_dropped,
        )

    async def aclose(self, within: float) -> None:
        """Stop retrying, after one last try (within `within` seconds) if Redis may be tried now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue and not self._guard.pause_left():
            try:
                async with asyncio.timeout(within):
                    await self.send()
            except TimeoutError:
                pass
        if self._queue:
            self._dropped(len(self._queue), "stopping")
            self._queue.clear()


def _send(backend: LimitBackend, pending: Pending, now_ms: int) -> Awaitable[list[tuple[int, int]]]:
    if pending.forwarded_ms is None:
        return backend.settle(pending.items, pending.request_id, now_ms)
    assert isinstance(backend, RedisBackend)  # forwards are queued only for Redis
    return backend.forward(pending.items, pending.request_id, pending.forwarded_ms)
