"""The interface of an exact-match answer store; `MemoryBackend` and `RedisBackend` implement it.

Every call names the workspace, and backends keep each workspace's entries apart (a separate
LRU, or a Redis key namespace), so isolation holds by construction, not by care.
"""

from __future__ import annotations

from typing import Protocol


class CacheBackend(Protocol):
    name: str

    async def get(self, workspace_id: str, alias: str, digest: str) -> bytes | None: ...

    async def set(
        self,
        workspace_id: str,
        alias: str,
        digest: str,
        value: bytes,
        ttl_seconds: int,
        max_entries: int | None,
    ) -> None: ...

    async def purge(self, workspace_id: str, alias: str | None) -> int:
        """Drop the workspace's entries (only the alias's when given); how many went."""
        ...

    async def stats(self, workspace_id: str) -> dict[str, int]: ...

    async def aclose(self) -> None: ...
