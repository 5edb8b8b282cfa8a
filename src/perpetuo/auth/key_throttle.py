"""Throttling floods of bad API keys, per client address, before any key lookup.

Requests with a missing, malformed or unknown key are counted per address in fixed one-minute
windows; once an address reaches the limit, every request from it gets 429 with Retry-After
until its window ends, without hashing or looking up the key it sent. The check that runs
on every request reads this process's memory only; the counting happens on failures alone.
With Redis the counts are shared (INCR per address and minute), so the limit holds across
instances; if Redis cannot be reached counting falls back to memory for a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("perpetuo.auth.key_throttle")

WINDOW = 60.0  # seconds
MAX_ADDRESSES = 100_000  # counts kept in memory, at most (a spray of addresses cannot grow it)
REDIS_PREFIX = "perpetuo:badkey:"
REDIS_TIMEOUT = 0.5  # seconds, per socket operation
REDIS_DEADLINE = 1.0  # seconds, for a whole exchange (only requests with bad keys wait)
REDIS_RETRY_AFTER = 5.0


class InvalidKeyThrottle:
    def __init__(
        self,
        limit: int,
        redis_url: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self._redis_url = redis_url
        self._client: Any = None
        self._down_until = 0.0
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}  # address -> (window number, count)
        self._blocked: dict[str, float] = {}  # address -> end of its blocked window

    def retry_after(self, address: str) -> float:
        """Seconds this address must wait; 0 when it may try a key. Memory only."""
        until = self._blocked.get(address)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._blocked[address]
            return 0.0
        return left

    async def failed(self, address: str) -> None:
        """A request from `address` came with a missing or unknown key."""
        if not address:
            return
        now = self._clock()
        window = int(now // WINDOW)
        count = await self._count_shared(address, window) if self._redis_url else None
        if count is None:
            count = self._count_here(address, window)
        if count >= self.limit:
            if len(self._blocked) >= MAX_ADDRESSES:
                self._blocked.clear()  # a flood of addresses: forget, rather than grow
            self._blocked[address] = (window + 1) * WINDOW

    def _count_here(self, address: str, window: int) -> int:
        seen, count = self._counts.get(address, (window, 0))
        count = count + 1 if seen == window else 1
        if address not in self._counts and len(self._counts) >= MAX_ADDRESSES:
            stale = [a for a, (w, _) in self._counts.items() if w != window]
            for old in stale or list(self._counts)[: MAX_ADDRESSES // 10]:
                del self._counts[old]
        self._counts[address] = (window, count)
        return count

    async def _count_shared(self, address: str, window: int) -> int | None:
        if time.monotonic() < self._down_until:
            return None
        name = f"{REDIS_PREFIX}{address}:{window}"
        try:
            async with asyncio.timeout(REDIS_DEADLINE):
                pipe = self._redis().pipeline(transaction=True)
                pipe.incr(name)
                pipe.expire(name, int(WINDOW * 2))
                count, _ = await pipe.execute()
            return int(count)
        except Exception as exc:  # never fail or slow a request on Redis
            if self._down_until == 0.0:
                log.warning("invalid-key throttle: Redis unavailable (%s); counting here", exc)
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER
            return None

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as redis

            self._client = redis.from_url(
                self._redis_url,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None
