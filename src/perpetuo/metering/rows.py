"""Request records as the bulk sinks take them: tuples in column order, rollups as tuples,
and a batch of them written through a sink.

This runs on the writer's thread, not on the event loop: turning a record into a row (its
timestamp, its JSON fields, the compacted trace) is most of a row's cost in Python.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import msgspec

from perpetuo.metering.compact import compact_trace
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.rollup import COUNTERS, fold_rows
from perpetuo.store.bulk import LOG_COLUMNS, ROLLUP_COUNTERS, RequestLogSink, Row, open_sink
from perpetuo.store.database import Database

_encode = msgspec.json.Encoder().encode
_values = attrgetter(*LOG_COLUMNS)
_CREATED = LOG_COLUMNS.index("created_at")
_TAGS = LOG_COLUMNS.index("tags")
_TRACE = LOG_COLUMNS.index("trace")
_DETAIL = LOG_COLUMNS.index("detail")
if ROLLUP_COUNTERS != COUNTERS:  # rollup rows go to the sinks in the table's column order
    raise RuntimeError("usage_rollups columns and metering.rollup.COUNTERS differ")


def _json(value: Any) -> str | None:
    return None if value is None else _encode(value).decode()


def to_row(record: RequestRecord, stamp: Callable[[float], Any]) -> Row:
    row = list(_values(record))
    row[_CREATED] = stamp(record.created_at)
    if record.tags is not None:
        row[_TAGS] = _json(record.tags)
    if record.trace is not None:
        row[_TRACE] = _json(compact_trace(record.trace, record))
    if record.detail is not None:
        row[_DETAIL] = _json(record.detail)
    return tuple(row)


def rollup_rows(
    records: Sequence[RequestRecord], indexes: Sequence[int] | None, stamp: Callable[[float], Any]
) -> list[Row]:
    """The rollup increments of `records` (only those at `indexes`, when given)."""
    chosen = records if indexes is None else [records[i] for i in indexes]
    stamps: dict[Any, Any] = {}
    rows = []
    for (workspace, bucket, dim, value), counters in fold_rows(chosen).items():
        stamped = stamps.get(bucket)
        if stamped is None:
            stamped = stamps[bucket] = stamp(bucket.timestamp())
        rows.append((workspace, stamped, dim, value, *counters))
    return rows


def write_records(sink: RequestLogSink, batch: list[RequestRecord], *, fresh: bool) -> int:
    """Insert `batch` with its rollups in one transaction; returns how many rows were new
    (`fresh`: live records, most likely new, so the sink tries its fast path first)."""
    rows = [to_row(record, sink.stamp) for record in batch]
    return sink.write(rows, lambda picked: rollup_rows(batch, picked, sink.stamp), fresh=fresh)


async def write_batch(db: Database, batch: list[RequestRecord]) -> int:
    """Write `batch` at once through the writer's own path (for tools and tests); returns how
    many rows were new."""

    def write() -> int:
        sink = open_sink(db.url)
        try:
            return write_records(sink, batch, fresh=True)
        finally:
            sink.close()

    return await asyncio.to_thread(write)
