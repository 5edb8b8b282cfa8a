"""The in-process answer store: an LRU per workspace, bounded in entries and bytes overall.

Each workspace has its own ordered dict (its `max_entries` evicts its own oldest); when the
process-wide bounds are exceeded, the workspace holding the most bytes gives up its least
recently used entry first, so one busy tenant cannot evict everybody else's answers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class _Space:
    entries: OrderedDict[tuple[str, str], tuple[bytes, float]] = field(default_factory=OrderedDict)
    size: int = 0


class MemoryBackend:
    name = "memory"

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._spaces: dict[str, _Space] = {}
        self.entries = 0
        self.bytes = 0
        self.evictions = 0

    async def get(self, workspace_id: str, alias: str, digest: str) -> bytes | None:
        space = self._spaces.get(workspace_id)
        if space is None:
            return None
        item = space.entries.get((alias, digest))
        if item is None:
            return None
        value, expires = item
        if expires <= self.clock():
            self._drop(workspace_id, space, (alias, digest))
            return None
        space.entries.move_to_end((alias, digest))
        return value

    async def set(
        self,
        workspace_id: str,
        alias: str,
        digest: str,
        value: bytes,
        ttl_seconds: int,
        max_entries: int | None,
    ) -> None:
        if len(value) > self.max_bytes:
            return
        space = self._spaces.setdefault(workspace_id, _Space())
        key = (alias, digest)
        if key in space.entries:
            self._drop(workspace_id, space, key)
        space.entries[key] = (value, self.clock() + ttl_seconds)
        space.size += len(value)
        self.entries += 1
        self.bytes += len(value)
        while max_entries is not None and len(space.entries) > max_entries:
            self._evict(workspace_id, space)
        while self.entries > self.max_entries or self.bytes > self.max_bytes:
            name = max(self._spaces, key=lambda w: self._spaces[w].size)
            self._evict(name, self._spaces[name])

    async def purge(self, workspace_id: str, alias: str | None) -> int:
        space = self._spaces.get(workspace_id)
        if space is None:
            return 0
        doomed = [k for k in space.entries if alias is None or k[0] == alias]
        for key in doomed:
            self._drop(workspace_id, space, key)
        return len(doomed)

    async def stats(self, workspace_id: str) -> dict[str, int]:
        space = self._spaces.get(workspace_id)
        return {
            "entries": len(space.entries) if space else 0,
            "bytes": space.size if space else 0,
        }

    async def aclose(self) -> None:
        self._spaces.clear()

    def _evict(self, workspace_id: str, space: _Space) -> None:
        key = next(iter(space.entries))
        self._drop(workspace_id, space, key)
        self.evictions += 1

    def _drop(self, workspace_id: str, space: _Space, key: tuple[str, str]) -> None:
        value, _ = space.entries.pop(key)
        space.size -= len(value)
        self.entries -= 1
        self.bytes -= len(value)
        if not space.entries:
            del self._spaces[workspace_id]
