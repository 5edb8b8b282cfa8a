"""Bulk writers for the request log: one transaction per batch, statements prepared once.

They run on the request-log writer's own thread (metering/writer.py), away from the event
loop, each with a connection of its own: SQLite through the standard library's `sqlite3`,
PostgreSQL through asyncpg on a private event loop. A sink takes rows as tuples in
`LOG_COLUMNS` order and a function giving the rollup rows of the rows it actually inserted,
so that a replayed record is neither stored twice nor counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy.engine import URL

from perpetuo.store.schema import request_logs, usage_rollups

LOG_COLUMNS = tuple(column.name for column in request_logs.c)
ROLLUP_KEY = ("workspace_id", "bucket", "dim", "value")
ROLLUP_COUNTERS = tuple(column.name for column in usage_rollups.c if not column.primary_key)
ROLLUP_MAXIMA = ("latency_max_ms",)  # kept as the larger value, where the others add up
ROLLUP_COLUMNS = (*ROLLUP_KEY, *ROLLUP_COUNTERS)

Row = tuple[Any, ...]
# Given the indexes of the rows inserted (None: all of them), their rollup rows.
RollupsOf = Callable[[Sequence[int] | None], list[Row]]


class RequestLogSink(Protocol):
    dialect: str

    def stamp(self, epoch: float) -> Any:
        """A timestamp as this database's driver takes it."""

    def write(self, rows: Sequence[Row], rollups: RollupsOf, *, fresh: bool = True) -> int:
        """Rows and their rollups in one transaction; returns how many rows were new.
        `fresh`: the rows are most likely new (live traffic), so try the fast path first."""

    def ping(self) -> None: ...

    def close(self) -> None: ...


def open_sink(url: URL, *, lock_timeout: float = 2.0) -> RequestLogSink:
    """A sink for the database at `url` (connecting lazily: the first write connects)."""
    if url.get_backend_name() == "sqlite":
        from perpetuo.store.bulk.sqlite import SqliteSink

        return SqliteSink(url, lock_timeout=lock_timeout)
    from perpetuo.store.bulk.postgres import PostgresSink

    return PostgresSink(url, lock_timeout=lock_timeout)


def placeholders(count: int, style: str) -> str:
    if style == "qmark":
        return ", ".join("?" * count)
    return ", ".join(f"${i}" for i in range(1, count + 1))


def rollup_upsert(style: str, greatest: str) -> str:
    """Add each row's counters to its (workspace, hour, dimension, value) rollup.
    `greatest`: the database's function for the larger of two values."""
    head, tail = rollup_upsert_parts(greatest)
    return f"{head}({placeholders(len(ROLLUP_COLUMNS), style)}){tail}"


def rollup_upsert_parts(greatest: str) -> tuple[str, str]:
    """The upsert around its VALUES tuples: what comes before them, and after."""
    additions = ", ".join(
        f"{name} = {greatest}(usage_rollups.{name}, excluded.{name})"
        if name in ROLLUP_MAXIMA
        else f"{name} = usage_rollups.{name} + excluded.{name}"
        for name in ROLLUP_COUNTERS
    )
    columns, key = ", ".join(ROLLUP_COLUMNS), ", ".join(ROLLUP_KEY)
    # Statements in this package are built from the schema's column names, never from data.
    return (
        f"INSERT INTO usage_rollups ({columns}) VALUES ",  # noqa: S608
        f" ON CONFLICT ({key}) DO UPDATE SET {additions}",
    )


def inserted_indexes(rows: Sequence[Row], inserted_ids: set[str]) -> list[int]:
    """The first index of each inserted id (a spill file may hold a record twice)."""
    picked: list[int] = []
    for index, row in enumerate(rows):
        if row[0] in inserted_ids:
            inserted_ids.discard(row[0])
            picked.append(index)
    return picked
