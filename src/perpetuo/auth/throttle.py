"""Sign-in throttling against password guessing, without handing anyone a lockout weapon.

Failures are counted in a sliding window under three keys:
- per (account, client address): past `pair_limit` failures that address waits before it may
  try that account again, twice as long after each further failure;
- per client address, whatever the accounts: past `ip_limit` failures, the same backoff;
- per account, from every address: past `account_alert` failures the account is under
  attack, and every address that has failed on it even once must back off.
No count is kept that can refuse a source that has not failed: the right password from an
address with no failures always gets through, so nobody can lock an administrator out by
guessing at their account. A success clears its (account, address) count only, so one
address guessing many accounts stays throttled.

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

PAIR_LIMIT = 5  # failed sign-ins per (account, address) before backoff starts ...
IP_LIMIT = 20  # ... per address, across accounts ...
ACCOUNT_ALERT = 50  # ... per account from all addresses: then any address that failed waits
WINDOW_SECONDS = 15 * 60.0  # ... counted within this sliding window
BASE_DELAY = 30.0  # seconds: the first wait past a limit, doubled for each further failure
MAX_DELAY = WINDOW_SECONDS  # and never more than this

REDIS_PREFIX = "perpetuo:login:"
REDIS_TIMEOUT = 0.5  # seconds, per socket operation
REDIS_DEADLINE = 1.0  # seconds, for a whole exchange: never hang a sign-in on Redis
REDIS_RETRY_AFTER = 5.0  # after a failure, use the fallback store this long before retrying


class ThrottleStore(Protocol):
    """Timestamps of failures per key, in a sliding window."""

    async def hit(self, key: str, now: float, window: float) -> None: ...

    async def failures(self, key: str, now: float, window: float) -> tuple[int, float]:
        """How many failures `key` has in the window, and when the latest was (0 if none)."""
        ...

    async def clear(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


def backoff(count: int, latest: float, now: float, limit: int) -> float:
    """Seconds still to wait after `count` failures (the latest at `latest`): none below
    `limit`, then BASE_DELAY doubling with each failure past it, at most MAX_DELAY."""
    if count < limit:
        return 0.0
    delay = min(BASE_DELAY * 2.0 ** min(count - limit, 32), MAX_DELAY)
    return max(0.0, latest + delay - now)


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

    async def failures(self, key: str, now: float, window: float) -> tuple[int, float]:
        stamps = self._live(key, now, window)
        return (len(stamps), stamps[-1]) if stamps else (0, 0.0)

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

    async def failures(self, key: str, now: float, window: float) -> tuple[int, float]:
        name = REDIS_PREFIX + key

        def build(pipe: Any) -> None:
            pipe.zremrangebyscore(name, "-inf", now - window)
            pipe.zcard(name)
            pipe.zrange(name, -1, -1, withscores=True)  # the latest failure

        result = await self._run(build)
        if result is None:
            return await self._fallback.failures(key, now, window)
        self._recovered()
        count, latest = int(result[1]), result[2]
        return (count, float(latest[0][1])) if count and latest else (0, 0.0)

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


def pair_key(email: str, ip: str | None) -> str:
    return f"{account_key(email)}@{ip or '-'}"


class LoginThrottle:
    def __init__(
        self,
        store: ThrottleStore | None = None,
        *,
        pair_limit: int = PAIR_LIMIT,
        ip_limit: int = IP_LIMIT,
        account_alert: int = ACCOUNT_ALERT,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store: ThrottleStore = store or MemoryThrottleStore()
        self.pair_limit = pair_limit
        self.ip_limit = ip_limit
        self.account_alert = account_alert
        self.window = window
        self._clock = clock

    async def retry_after(self, email: str, ip: str | None) -> float:
        """Seconds this address must wait before trying this account again; 0 if it may now.
        Always 0 for an address that has not failed (on this account, or often elsewhere)."""
        now = self._clock()
        count, latest = await self.store.failures(pair_key(email, ip), now, self.window)
        wait = backoff(count, latest, now, self.pair_limit)
        if count and wait == 0.0:
            # This address has failed here: if the account is under attack, it backs off too.
            total, _ = await self.store.failures(account_key(email), now, self.window)
            if total >= self.account_alert:
                wait = backoff(count, latest, now, 1)
        if ip:
            ip_count, ip_latest = await self.store.failures(ip_key(ip), now, self.window)
            wait = max(wait, backoff(ip_count, ip_latest, now, self.ip_limit))
        return wait

    async def failed(self, email: str, ip: str | None) -> None:
        now = self._clock()
        await self.store.hit(pair_key(email, ip), now, self.window)
        await self.store.hit(account_key(email), now, self.window)
        if ip:
            await self.store.hit(ip_key(ip), now, self.window)

    async def succeeded(self, email: str, ip: str | None) -> None:
        await self.store.clear(pair_key(email, ip))

    async def aclose(self) -> None:
        await self.store.aclose()


def login_throttle(redis_url: str | None) -> LoginThrottle:
    """The throttle for a deployment: shared through Redis when it has one."""
    return LoginThrottle(RedisThrottleStore(redis_url) if redis_url else MemoryThrottleStore())
