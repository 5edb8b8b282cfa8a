"""The in-process vector index behind semantic matching: exact cosine search.

Vectors are unit length (float32), so cosine similarity is a dot product; each partition (a
workspace, alias, prompt context and embedding model) is one growing matrix, searched with
one matrix-vector product. Exact search over 100K 384-dimension vectors takes a few
milliseconds (docs/caching.md); past that an approximate index (or pgvector) would pay off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class _Partition:
    workspace_id: str
    alias: str
    matrix: Any  # np.ndarray (capacity, dims)
    expires: Any  # np.ndarray (capacity,) epoch seconds
    ids: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class Match:
    entry_id: str
    similarity: float


class VectorIndex:
    def __init__(self) -> None:
        self._partitions: dict[str, _Partition] = {}
        self._known: set[str] = set()

    def __len__(self) -> int:
        return len(self._known)

    def __contains__(self, entry_id: str) -> bool:
        return entry_id in self._known

    def add(
        self,
        workspace_id: str,
        alias: str,
        partition: str,
        entry_id: str,
        vector: Any,
        expires_at: float,
    ) -> None:
        if entry_id in self._known:
            return
        vector = np.asarray(vector, dtype=np.float32)
        part = self._partitions.get(partition)
        if part is None or part.matrix.shape[1] != vector.shape[0]:
            part = _Partition(
                workspace_id,
                alias,
                np.empty((16, vector.shape[0]), dtype=np.float32),
                np.empty(16, dtype=np.float64),
            )
            self._partitions[partition] = part
        if part.size == part.matrix.shape[0]:
            part.matrix = np.concatenate([part.matrix, np.empty_like(part.matrix)])
            part.expires = np.concatenate([part.expires, np.empty_like(part.expires)])
        part.matrix[part.size] = vector
        part.expires[part.size] = expires_at
        part.ids.append(entry_id)
        self._known.add(entry_id)

    def search(self, partition: str, vector: Any, now: float) -> Match | None:
        part = self._partitions.get(partition)
        if part is None or part.size == 0:
            return None
        query = np.asarray(vector, dtype=np.float32)
        if query.shape[0] != part.matrix.shape[1]:
            return None
        scores = part.matrix[: part.size] @ query
        scores[part.expires[: part.size] <= now] = -np.inf
        best = int(np.argmax(scores))
        if not np.isfinite(scores[best]):
            return None
        return Match(part.ids[best], float(scores[best]))

    def partition_size(self, partition: str) -> int:
        part = self._partitions.get(partition)
        return part.size if part else 0

    def drop(self, workspace_id: str, alias: str | None = None) -> int:
        """Forget a workspace's partitions (only the alias's when given)."""
        doomed = [
            name
            for name, part in self._partitions.items()
            if part.workspace_id == workspace_id and (alias is None or part.alias == alias)
        ]
        dropped = 0
        for name in doomed:
            part = self._partitions.pop(name)
            self._known.difference_update(part.ids)
            dropped += part.size
        return dropped

    def compact(self, now: float) -> None:
        """Remove expired vectors (run now and then, off the request path)."""
        for name, part in list(self._partitions.items()):
            live = part.expires[: part.size] > now
            if live.all():
                continue
            keep = np.flatnonzero(live)
            self._known.difference_update(i for j, i in enumerate(part.ids) if not live[j])
            if keep.size == 0:
                del self._partitions[name]
                continue
            part.matrix = part.matrix[keep].copy()
            part.expires = part.expires[keep].copy()
            part.ids = [part.ids[j] for j in keep]


def unit(values: Any) -> Any:
    """A float32 unit vector (zero stays zero)."""
    vector = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
