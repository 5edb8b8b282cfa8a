"""Semantic answers: persisted in the database, searched in each instance's memory.

An entry is a row (embedding, answer, expiry) in `semantic_cache_entries`, so entries survive
restarts and every instance sees every other's: a workspace's rows are loaded into the
in-process `VectorIndex` the first time it looks something up, and new rows are picked up
by a short poll (by sequence number, with an overlap for commits that land out of order).
Purges reach other instances through the change feed. The answer itself is read from the
database on a hit (a primary-key lookup), which keeps memory to the vectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import numpy as np
from sqlalchemy import Delete, delete, func, insert, select

from perpetuo.cache.vectors import Match, VectorIndex
from perpetuo.store.conversation_tables import semantic_cache_entries as table
from perpetuo.store.database import Database
from perpetuo.store.ids import new_id
from perpetuo.store.timeutil import utcnow

log = logging.getLogger("perpetuo.cache")

POLL_SECONDS = 2.0
SEQ_OVERLAP = 256  # rows committed out of sequence order are still picked up
THREAD_SEARCH_ABOVE = 20_000  # larger partitions are searched off the event loop


def _from_epoch(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def expired_entries(now: dt.datetime) -> Delete:
    """Every instance asks this once a minute: read by the expiry index, as the rows carry
    their vectors and answers and a scan would read all of them."""
    return delete(table).where(table.c.expires_at <= now)


class SemanticStore:
    def __init__(self, db: Database, index: VectorIndex | None = None) -> None:
        self.db = db
        self.index = index or VectorIndex()
        self._loaded: set[str] = set()
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._watermark = 0
        self._task: asyncio.Task[None] | None = None

    async def search(
        self, workspace_id: str, partition: str, vector: Any, threshold: float
    ) -> tuple[bytes, float] | None:
        """The stored answer most similar to `vector`, if it reaches `threshold`."""
        await self._ensure_loaded(workspace_id)
        now = time.time()
        if self.index.partition_size(partition) > THREAD_SEARCH_ABOVE:
            match = await asyncio.to_thread(self.index.search, partition, vector, now)
        else:
            match = self.index.search(partition, vector, now)
        if match is None or match.similarity < threshold:
            return None
        answer = await self._answer(match)
        return (answer, match.similarity) if answer is not None else None

    async def add(
        self,
        workspace_id: str,
        alias: str,
        partition: str,
        embedder: str,
        vector: Any,
        answer: bytes,
        ttl_seconds: int,
        max_entries: int | None,
    ) -> None:
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl_seconds)
        entry_id = new_id("sce")
        data = np.asarray(vector, dtype=np.float32).tobytes()
        async with self.db.begin() as conn:
            await conn.execute(
                insert(table).values(
                    id=entry_id,
                    workspace_id=workspace_id,
                    alias=alias,
                    partition=partition,
                    embedder=embedder,
                    vector=data,
                    answer=answer,
                    created_at=now,
                    expires_at=expires,
                )
            )
            if max_entries is not None:
                await self._trim(conn, workspace_id, max_entries)
        self.index.add(workspace_id, alias, partition, entry_id, vector, expires.timestamp())

    async def purge(self, workspace_id: str, alias: str | None) -> int:
        """Delete the rows (the caller tells the other instances)."""
        query = delete(table).where(table.c.workspace_id == workspace_id)
        if alias is not None:
            query = query.where(table.c.alias == alias)
        async with self.db.begin() as conn:
            result = await conn.execute(query)
        self.forget(workspace_id, alias)
        return int(result.rowcount or 0)

    def forget(self, workspace_id: str, alias: str | None) -> None:
        """Drop what this instance holds in memory (a purge elsewhere, a deleted workspace)."""
        self.index.drop(workspace_id, alias)
        self._loaded.discard(workspace_id)  # reloaded from the database on next use

    async def count(self, workspace_id: str) -> int:
        async with self.db.connect() as conn:
            return int(
                await conn.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.workspace_id == workspace_id, table.c.expires_at > utcnow())
                )
                or 0
            )

    # -- loading and syncing ----------------------------------------------------------------

    async def _ensure_loaded(self, workspace_id: str) -> None:
        if workspace_id in self._loaded:
            return
        pending = self._loading.get(workspace_id)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[workspace_id] = pending
            try:
                await self._load(table.c.workspace_id == workspace_id)
                self._loaded.add(workspace_id)
                pending.set_result(None)
            except Exception as exc:
                pending.set_exception(exc)
                raise
            finally:
                self._loading.pop(workspace_id, None)
            self._start_polling()
        else:
            await asyncio.shield(pending)

    async def _load(self, condition: Any) -> None:
        columns = (
            table.c.seq,
            table.c.id,
            table.c.workspace_id,
            table.c.alias,
            table.c.partition,
            table.c.vector,
            table.c.expires_at,
        )
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(select(*columns).where(condition, table.c.expires_at > utcnow()))
            ).all()
        for row in rows:
            self._watermark = max(self._watermark, int(row.seq))
            self.index.add(
                row.workspace_id,
                row.alias,
                row.partition,
                row.id,
                np.frombuffer(row.vector, dtype=np.float32),
                row.expires_at.timestamp(),
            )

    async def poll_once(self) -> None:
        """Pick up rows other instances wrote for the workspaces this one has loaded."""
        if self._loaded:
            await self._load(
                (table.c.seq > self._watermark - SEQ_OVERLAP)
                & table.c.workspace_id.in_(sorted(self._loaded))
            )

    def _start_polling(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll_forever())

    async def _poll_forever(self) -> None:
        passes = 0
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.poll_once()
                passes += 1
                if passes % 30 == 0:  # about once a minute
                    self.index.compact(time.time())
                    await self._delete_expired()
            except Exception as exc:
                log.warning("semantic cache sync failed: %s", exc)

    async def _delete_expired(self) -> None:
        async with self.db.begin() as conn:
            await conn.execute(expired_entries(utcnow()))

    async def _trim(self, conn: Any, workspace_id: str, max_entries: int) -> None:
        """Keep the workspace's newest `max_entries` rows."""
        cutoff = await conn.scalar(
            select(table.c.seq)
            .where(table.c.workspace_id == workspace_id)
            .order_by(table.c.seq.desc())
            .offset(max_entries)
            .limit(1)
        )
        if cutoff is not None:
            await conn.execute(
                delete(table).where(table.c.workspace_id == workspace_id, table.c.seq <= cutoff)
            )

    async def _answer(self, match: Match) -> bytes | None:
        async with self.db.connect() as conn:
            return await conn.scalar(select(table.c.answer).where(table.c.id == match.entry_id))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
