"""The request-log sink for PostgreSQL: asyncpg on the writer thread's private event loop.

Live batches go in with `COPY` (copy_records_to_table) into the partitioned table, their
rollups with one prepared upsert; a batch that hits an id already stored (a replay) is
copied into a temporary table instead and moved over with `ON CONFLICT DO NOTHING
RETURNING id`, so only the rows actually inserted reach the rollups.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Coroutine, Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from perpetuo.store.bulk import (
    LOG_COLUMNS,
    RollupsOf,
    Row,
    inserted_indexes,
    partitions,
    rollup_upsert,
)

_UPSERT = rollup_upsert("numeric", "GREATEST")
_STAGING = "request_logs_incoming"
_CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE request_logs INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
)
_COLUMNS = ", ".join(LOG_COLUMNS)
_MOVE = (
    f"INSERT INTO request_logs ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGING} "  # noqa: S608
    "ON CONFLICT DO NOTHING RETURNING id"
)
_CREATED = LOG_COLUMNS.index("created_at")


class PostgresSink:
    dialect = "postgresql"

    def __init__(self, url: URL, *, lock_timeout: float) -> None:
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.lock_timeout = lock_timeout
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection | None = None
        self._partitioned = False
        self._days: set[dt.date] = set()

    def stamp(self, epoch: float) -> Any:
        return dt.datetime.fromtimestamp(epoch, dt.UTC)

    def _run(self, work: Coroutine[Any, Any, Any]) -> Any:
        try:
            return self._loop.run_until_complete(work)
        except BaseException:
            self._drop_connection()
            raise

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None:
            conn = await asyncpg.connect(self.dsn, timeout=5 + self.lock_timeout)
            # A batch waits this long for a lock (a migration, a partition being created) and
            # then fails, to be retried or spilled, instead of hanging the writer.
            await conn.execute(f"SET lock_timeout = {int(self.lock_timeout * 1000)}")
            self._partitioned = bool(await conn.fetchval(partitions.IS_PARTITIONED))
            if self._partitioned:
                names = await conn.fetch(partitions.LIST)
                self._days = {d for (name,) in names if (d := partitions.day_of(name))}
            self._conn = conn
        return self._conn

    def write(self, rows: Sequence[Row], rollups: RollupsOf, *, fresh: bool = True) -> int:
        if not rows:
            return 0
        return self._run(self._write(rows, rollups, fresh))

    async def _write(self, rows: Sequence[Row], rollups: RollupsOf, fresh: bool) -> int:
        conn = await self._connection()
        await self._ensure_partitions(conn, rows)
        if fresh:
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "request_logs", records=rows, columns=LOG_COLUMNS
                    )
                    await conn.executemany(_UPSERT, rollups(None))
                return len(rows)
            except asyncpg.UniqueViolationError:
                pass  # some were written before: the careful path
        async with conn.transaction():
            await conn.execute(_CREATE_STAGING)
            await conn.copy_records_to_table(_STAGING, records=rows, columns=LOG_COLUMNS)
            inserted = {record[0] for record in await conn.fetch(_MOVE)}
            picked = inserted_indexes(rows, inserted)
            await conn.executemany(_UPSERT, rollups(picked))
        return len(picked)

    async def _ensure_partitions(self, conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
        if not self._partitioned:
            return
        days = {row[_CREATED].date() for row in rows}
        days.add(dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1))  # ahead of midnight
        for day in sorted(days - self._days):
            # Another instance may create it at the same moment.
            with contextlib.suppress(asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
                await conn.execute(partitions.create_sql(day))
            self._days.add(day)

    def ping(self) -> None:
        async def probe() -> None:
            await (await self._connection()).fetchval("SELECT 1")

        self._run(probe())

    def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.terminate()

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.wait_for(conn.close(), 5))
        self._loop.close()
