"""Async connections over SQLAlchemy Core, through SQLAlchemy's own greenlet bridge.

Why not `sqlalchemy.ext.asyncio`: importing that package loads its ORM session as well
(`sqlalchemy.orm`: about 7 MiB of resident memory and 80 ms of start-up in every gateway
process), and Perpetuo uses Core only. This module is the part of it Perpetuo uses:
connections, transactions (nested too), `execute`, `scalar`, `scalars` and `run_sync`. Each
call runs the sync `Connection` method in `greenlet_spawn`, as ext.asyncio does, so the async
drivers (asyncpg, aiosqlite) and their dialects work unchanged. Results are the buffered
Core results those dialects produce; server-side cursors are not offered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy import Table, create_engine
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, ScalarResult, Transaction
from sqlalchemy.util.concurrency import greenlet_spawn

T = TypeVar("T")


class AsyncEngine:
    """A sync Core engine built for an async driver, used from coroutines."""

    def __init__(self, url: URL | str, **options: Any) -> None:
        # `_is_async` is what `create_async_engine` passes: it selects the dialect's async
        # variant and an asyncio-aware pool.
        self.sync_engine: Engine = create_engine(url, _is_async=True, **options)

    def connect(self) -> AsyncConnection:
        """A connection checked out when entered: `async with engine.connect() as conn`."""
        return AsyncConnection(self.sync_engine)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on success, rolled back on error."""
        async with self.connect() as conn, conn.begin():
            yield conn

    async def dispose(self) -> None:
        await greenlet_spawn(self.sync_engine.dispose)


class AsyncConnection:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sync: Connection | None = None

    async def __aenter__(self) -> AsyncConnection:
        self._sync = await greenlet_spawn(self._engine.connect)
        return self

    async def __aexit__(self, *_: object) -> None:
        # Returning the connection to the pool must not stop halfway when the caller is
        # cancelled: it finishes in a task of its own, then the cancellation goes on.
        await _to_completion(self.close())

    @property
    def sync_connection(self) -> Connection:
        if self._sync is None:
            raise RuntimeError("the connection is not started: use `async with`")
        return self._sync

    @property
    def dialect(self) -> Any:
        return self.sync_connection.dialect

    def insert(self, table: Table) -> Any:
        """INSERT in this connection's dialect, with its `on_conflict_do_nothing` and
        `on_conflict_do_update` (both engines have them, with the same arguments)."""
        # Imported here: a gateway on SQLite never loads PostgreSQL's dialect (~40 ms of start-up).
        if self.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def in_transaction(self) -> bool:
        return self.sync_connection.in_transaction()

    def begin(self) -> AsyncTransaction:
        return AsyncTransaction(self, nested=False)

    def begin_nested(self) -> AsyncTransaction:
        """A savepoint: `async with conn.begin_nested():` rolls back only its own work."""
        return AsyncTransaction(self, nested=True)

    async def close(self) -> None:
        if self._sync is not None:
            await greenlet_spawn(self._sync.close)

    async def execute(
        self, statement: Any, parameters: Any = None, **options: Any
    ) -> CursorResult[Any]:
        return await greenlet_spawn(
            self.sync_connection.execute, statement, parameters, _require_await=True, **options
        )

    async def scalar(self, statement: Any, parameters: Any = None, **options: Any) -> Any:
        result = await self.execute(statement, parameters, **options)
        return result.scalar()

    async def scalars(
        self, statement: Any, parameters: Any = None, **options: Any
    ) -> ScalarResult[Any]:
        result = await self.execute(statement, parameters, **options)
        return result.scalars()

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(sync_connection, *args)` where sync code may run queries (e.g. migrations)."""
        return await greenlet_spawn(fn, self.sync_connection, *args, **kwargs)


class AsyncTransaction:
    def __init__(self, conn: AsyncConnection, *, nested: bool) -> None:
        self._conn = conn
        self._nested = nested
        self._sync: Transaction | None = None

    async def __aenter__(self) -> AsyncTransaction:
        sync = self._conn.sync_connection
        self._sync = await greenlet_spawn(sync.begin_nested if self._nested else sync.begin)
        return self

    async def __aexit__(self, kind: Any, value: Any, traceback: Any) -> None:
        # The sync transaction's own exit: commit when the block ended cleanly, else roll back.
        assert self._sync is not None
        await greenlet_spawn(self._sync.__exit__, kind, value, traceback)


async def _to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` in its own task and wait for it even if we are cancelled meanwhile; the
    cancellation is raised once it has finished."""
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
            continue
        if cancelled is not None:
            raise cancelled
        return result
