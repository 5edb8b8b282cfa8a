"""The response cache as the pipeline uses it: exact answers in a backend, semantic ones in
the vector store (created on first use, so numpy loads only when semantic caching is on)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from perpetuo.cache.answer import CachedAnswer, decode_answer
from perpetuo.cache.backend import CacheBackend
from perpetuo.cache.keys import RequestKey

if TYPE_CHECKING:
    from perpetuo.cache.semantic import SemanticStore
    from perpetuo.store.database import Database

log = logging.getLogger("perpetuo.cache")


class ResponseCache:
    def __init__(
        self,
        backend: CacheBackend,
        db: Database | None,
        *,
        max_ttl_seconds: int,
        max_entry_bytes: int,
    ) -> None:
        self.backend = backend
        self.db = db
        self.max_ttl_seconds = max_ttl_seconds
        self.max_entry_bytes = max_entry_bytes
        self._semantic: SemanticStore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def semantic(self) -> SemanticStore:
        if self._semantic is None:
            from perpetuo.cache.semantic import SemanticStore

            assert self.db is not None, "semantic caching needs the database"
            self._semantic = SemanticStore(self.db)
        return self._semantic

    async def get(self, key: RequestKey) -> CachedAnswer | None:
        raw = await self.backend.get(key.workspace_id, key.alias, key.digest)
        if raw is None:
            return None
        try:
            return decode_answer(raw)
        except Exception:
            return None  # written by an incompatible version: a miss

    async def purge(self, workspace_id: str, alias: str | None) -> dict[str, int]:
        exact = await self.backend.purge(workspace_id, alias)
        semantic = 0
        if self.db is not None:
            semantic = await self.semantic.purge(workspace_id, alias)
        return {"exact": exact, "semantic": semantic}

    def forget(self, workspace_id: str, alias: str | None) -> None:
        """Another instance purged (or the workspace is gone): drop what this one holds."""
        if self._semantic is not None:
            self._semantic.forget(workspace_id, alias)
        if self.backend.name == "memory":
            self.background(self.backend.purge(workspace_id, alias))

    async def stats(self, workspace_id: str) -> dict[str, Any]:
        semantic = await self.semantic.count(workspace_id) if self.db is not None else 0
        return {
            "backend": self.backend.name,
            "exact": await self.backend.stats(workspace_id),
            "semantic": {"entries": semantic},
        }

    def background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run store work off the response path; failures are logged, never raised."""

        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("response cache write failed: %s", exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._semantic is not None:
            await self._semantic.aclose()
        await self.backend.aclose()


def build_response_cache(config: Any, redis_url: str | None, db: Database | None) -> ResponseCache:
    """From `cache:` in the config file and PERPETUO_REDIS_URL."""
    backend: CacheBackend
    if config.backend == "redis" or (config.backend == "auto" and redis_url):
        if not redis_url:
            raise ValueError("cache.backend is redis but PERPETUO_REDIS_URL is not set")
        from perpetuo.cache.redis_backend import RedisBackend

        backend = RedisBackend(redis_url)
    else:
        from perpetuo.cache.memory import MemoryBackend

        backend = MemoryBackend(config.max_entries, config.max_bytes)
    return ResponseCache(
        backend,
        db,
        max_ttl_seconds=config.max_ttl_seconds,
        max_entry_bytes=config.max_entry_bytes,
    )
