"""The shared answer store in Redis, for several gateway instances.

Keys are `perpetuo:cache:{<workspace>}:<alias hash>:<request hash>`: the workspace is a
namespace (and a Redis Cluster hash tag), so isolation holds by construction. A sorted set per
workspace indexes its entries by expiry, to bound them (`max_entries`: the entries expiring
soonest go first) and to purge a workspace or one alias. Every call is bounded in time and
any failure is a miss: a cache must never fail a request. redis-py is imported on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import Any

log = logging.getLogger("perpetuo.cache")

PREFIX = "perpetuo:cache:"
DEADLINE = 0.5
PAUSE_SECONDS = 2.0  # after a failure, Redis is left alone this long
LOG_EVERY_SECONDS = 60.0

# KEYS: entry, index. ARGV: value, ttl ms, expiry ms (score), now ms, max entries (0: none).
_SET = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local cap = tonumber(ARGV[5])
if cap > 0 then
  local extra = redis.call('ZCARD', KEYS[2]) - cap
  if extra > 0 then
    local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
    redis.call('DEL', unpack(old))
    redis.call('ZREM', KEYS[2], unpack(old))
  end
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], math.max(tonumber(last[2]), tonumber(ARGV[3])))
return 1
"""
# KEYS: index. ARGV: key prefix to match ('' for all). Returns how many went.
_PURGE = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local n = 0
for _, key in ipairs(members) do
  if ARGV[1] == '' or string.sub(key, 1, string.len(ARGV[1])) == ARGV[1] then
    n = n + redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], key)
  end
end
return n
"""


def _alias_tag(alias: str) -> str:
    return hashlib.sha256(alias.encode()).hexdigest()[:16]


def _space(workspace_id: str) -> str:
    return f"{PREFIX}{{{workspace_id}}}:"


class RedisBackend:
    name = "redis"

    def __init__(self, url: str, *, deadline: float = DEADLINE) -> None:
        self.url = url
        self.deadline = deadline
        self.failures = 0
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._paused_until = 0.0
        self._last_log = -LOG_EVERY_SECONDS

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as redis  # only when a Redis cache is configured

            self._client = redis.from_url(
                self.url,
                socket_timeout=self.deadline / 2,
                socket_connect_timeout=self.deadline / 2,
                max_connections=32,
            )
            self._scripts = {
                "set": self._client.register_script(_SET),
                "purge": self._client.register_script(_PURGE),
            }
        return self._client

    async def _run(self, work: Any, default: Any) -> Any:
        if time.monotonic() < self._paused_until:
            return default
        try:
            async with asyncio.timeout(self.deadline):
                return await work(self._redis())
        except Exception as exc:
            self._failed(exc)
            return default

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        now = time.monotonic()
        self._paused_until = now + PAUSE_SECONDS
        if now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            log.warning("response cache: Redis unavailable (%s); serving without it", exc)

    async def get(self, workspace_id: str, alias: str, digest: str) -> bytes | None:
        key = f"{_space(workspace_id)}{_alias_tag(alias)}:{digest}"
        return await self._run(lambda r: r.get(key), None)

    async def set(
        self,
        workspace_id: str,
        alias: str,
        digest: str,
        value: bytes,
        ttl_seconds: int,
        max_entries: int | None,
    ) -> None:
        space = _space(workspace_id)
        now_ms = int(time.time() * 1000)
        expiry = now_ms + ttl_seconds * 1000
        keys = [f"{space}{_alias_tag(alias)}:{digest}", f"{space}idx"]
        args = [value, ttl_seconds * 1000, expiry, now_ms, max_entries or 0]
        await self._run(lambda r: self._scripts["set"](keys=keys, args=args), None)

    async def purge(self, workspace_id: str, alias: str | None) -> int:
        space = _space(workspace_id)
        match = f"{space}{_alias_tag(alias)}:" if alias is not None else ""

        async def run(r: Any) -> int:
            return int(await self._scripts["purge"](keys=[f"{space}idx"], args=[match]))

        return await self._run(run, 0)

    async def stats(self, workspace_id: str) -> dict[str, int]:
        index = f"{_space(workspace_id)}idx"
        now_ms = int(time.time() * 1000)
        entries = await self._run(lambda r: r.zcount(index, now_ms, "+inf"), 0)
        return {"entries": int(entries)}

    async def aclose(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None
