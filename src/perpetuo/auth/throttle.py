"""Sign-in throttling against password guessing: failures counted per account and per client IP.

Failures are kept in a sliding window. While an account (or an address) has reached its
limit, sign-in is refused before the password is even checked, and the caller learns how
long to wait. A successful sign-in clears the account's count (not the address's: one
address guessing many accounts stays throttled).

Two stores behind one interface: in memory (a single instance) and Redis (shared by every
instance). If Redis cannot be reached the Redis store falls back to its own in-memory store
for a few seconds at a time, with a warning: sign-in keeps working (fail open as far as
Redis is concerned) and guessing stays limited per instance. Redis calls carry short
timeouts so an outage never makes sign-in hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("perpetuo.auth.throttle")

ACCOUNT_LIMIT = 5  # failed sign-ins per account ...
IP_LIMIT = 20  # ... and per client address ...
WINDOW_SECONDS = 15 * 60.0  # ... within this sliding window

REDIS_PREFIX = "perpetuo:login:"
REDIS_TIMEOUT = 0.5  # seconds, per socket operation
REDIS_DEADLINE = 1.0  # seconds, for a whole exchange: never hang a sign-in on Redis
REDIS_RETRY_AFTER = 5.0  # after a failure, use the fallback store this long before retrying


class ThrottleStore(Protocol):
    """Timestamps of failures per key, in a sliding window."""

    async def hit(self, key: str, now: float, window: float) -> None: ...

    async def wait_seconds(self, key: str, now: float, window: float, limit: int) -> float:
        """How long until `key` is under `limit` again; 0 when it already is."""
        ...

    async def clear(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


def _wait(stamps: list[float], now: float, window: float, limit: int) -> float:
    """Stamps ascending and inside the window: the lock lifts when all but limit-1 expire."""
    if len(stamps) < limit:
        return 0.0
    return max(0.0, stamps[len(stamps) - limit] + window - now)


class MemoryThrottleStore:
    """One process's counts. Bounded, so a spray of addresses cannot exhaust memory."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def _live(self, key: str, now: float, window: float) -> deque[float] | None:
        stamps = self._hits.get(key)
        if stamps is None:
            return None
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if not stamps:
            del self._hits[key]
            return None
        return stamps

    async def hit(self, key: str, now: float, window: float) -> None:
        stamps = self._live(key, now, window)
        if stamps is None:
            if len(self._hits) >= self._max_keys:
                self._evict(now, window)
            stamps = self._hits[key] = deque()
        stamps.append(now)

    async def wait_seconds(self, key: str, now: float, window: float, limit: int) -> float:
        stamps = self._live(key, now, window)
        return _wait(list(stamps), now, window, limit) if stamps else 0.0

    async def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    async def aclose(self) -> None:
        self._hits.clear()

    def _evict(self, now: float, window: float) -> None:
        for key in list(self._hits):
            self._live(key, now, window)
        # Still full: drop the keys seen first (dicts keep insertion order).
        for key in list(self._hits)[: max(0, len(self._hits) - self._max_keys + 1)]:
            del self._hits[key]


class RedisThrottleStore:
    """Counts shared by every instance: one sorted set of failure times per key."""

    def __init__(self, url: str, fallback: MemoryThrottleStore | None = None) -> None:
        self._url = url
        self._client: Any = None
        self._fallback = fallback or MemoryThrottleStore()
        self._down_until = 0.0

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as redis

            self._client = redis.from_url(
                self._url,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
        return self._client

    async def _run(self, build: Callable[[Any], None]) -> list[Any] | None:
        """The results of one MULTI/EXEC, or None (after a warning) if Redis is unavailable."""
        if time.monotonic() < self._down_until:
            return None
        try:
            async with asyncio.timeout(REDIS_DEADLINE):
                pipe = self._redis().pipeline(transaction=True)
                build(pipe)
                return list(await pipe.execute())
        except Exception as exc:  # any Redis trouble: never block or fail sign-in on it
            if self._down_until == 0.0:
                log.warning("login throttle: Redis unavailable (%s); counting in memory", exc)
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER
            return None

    def _recovered(self) -> None:
        if self._down_until:
            log.warning("login throttle: Redis is back; counting in Redis again")
            self._down_until = 0.0

    async def hit(self, key: str, now: float, window: float) -> None:
        name = REDIS_PREFIX + key
        member = f"{now:.6f}:{secrets.token_hex(4)}"  # unique, so equal times all count

        def build(pipe: Any) -> None:
            pipe.zremrangebyscore(name, "-inf", now - window)
            pipe.zadd(name, {member: now})
            pipe.pexpire(name, int(window * 1000) + 1000)

        if await self._run(build) is None:
            await self._fallback.hit(key, now, window)
        else:
            self._recovered()

    async def wait_seconds(self, key: str, now: float, window: float, limit: int) -> float:
        name = REDIS_PREFIX + key

        def build(pipe: Any) -> None:
            pipe.zremrangebyscore(name, "-inf", now - window)
            pipe.zcard(name)
            # The limit-th newest failure: when it leaves the window, the key is under limit.
            pipe.zrange(name, -limit, -limit, withscores=True)

        result = await self._run(build)
        if result is None:
            return await self._fallback.wait_seconds(key, now, window, limit)
        self._recovered()
        count, edge = int(result[1]), result[2]
        if count < limit or not edge:
            return 0.0
        return max(0.0, float(edge[0][1]) + window - now)

    async def clear(self, key: str) -> None:
        await self._fallback.clear(key)
        await self._run(lambda pipe: pipe.delete(REDIS_PREFIX + key))

    async def aclose(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None


def account_key(email: str) -> str:
    # Hashed: the store (possibly a shared Redis) never holds people's email addresses.
    return "acct:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def ip_key(ip: str) -> str:
    return "ip:" + ip


class LoginThrottle:
    def __init__(
        self,
        store: ThrottleStore | None = None,
        *,
        account_limit: int = ACCOUNT_LIMIT,
        ip_limit: int = IP_LIMIT,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store: ThrottleStore = store or MemoryThrottleStore()
        self.account_limit = account_limit
        self.ip_limit = ip_limit
        self.window = window
        self._clock = clock

    async def retry_after(self, email: str, ip: str | None) -> float:
        """Seconds the caller must wait before trying to sign in again; 0 if it may now."""
        now = self._clock()
        wait = await self.store.wait_seconds(
            account_key(email), now, self.window, self.account_limit
        )
        if ip:
            wait = max(
                wait, await self.store.wait_seconds(ip_key(ip), now, self.window, self.ip_limit)
            )
        return wait

    async def failed(self, email: str, ip: str | None) -> None:
        now = self._clock()
        await self.store.hit(account_key(email), now, self.window)
        if ip:
            await self.store.hit(ip_key(ip), now, self.window)

    async def succeeded(self, email: str) -> None:
        await self.store.clear(account_key(email))

    async def aclose(self) -> None:
        await self.store.aclose()


def login_throttle(redis_url: str | None) -> LoginThrottle:
    """The throttle for a deployment: shared through Redis when it has one."""
    return LoginThrottle(RedisThrottleStore(redis_url) if redis_url else MemoryThrottleStore())
