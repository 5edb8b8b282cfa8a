"""The SQLite request-log sink writes a batch in multi-row statements: every row and rollup
arrives whatever the chunking, and a replay adds only the rows not stored yet."""

from __future__ import annotations

import sqlite3

import pytest

from perpetuo.metering.rows import write_records
from perpetuo.store.bulk import open_sink
from perpetuo.store.bulk import sqlite as sqlite_sink
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from tests.metering.test_writer import record


@pytest.mark.parametrize("variables", [None, 100], ids=["default", "few-variables"])
async def test_batches_land_whole_in_chunks_and_replays_add_only_new_rows(
    tmp_path, monkeypatch, variables
):
    monkeypatch.setattr(sqlite_sink, "CHUNK", 7)  # many statements per batch
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'sink.db'}")
    await upgrade(db)
    await db.dispose()
    sink = open_sink(db.url)
    conn = sink._connection()  # type: ignore[attr-defined]
    if variables:  # an SQLite built with a low limit: 2 log rows, 1 rollup row a statement
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)
    batch = [record(i, key_id=f"key_{i}", cost_micros=i) for i in range(600)]
    try:
        assert write_records(sink, batch, fresh=True) == 600
        replay = batch[300:] + [
            record(i, key_id=f"key_{i}", cost_micros=i) for i in range(600, 700)
        ]
        assert write_records(sink, replay, fresh=False) == 100  # only the new ones
        assert write_records(sink, batch[:5], fresh=True) == 0  # stored: the careful path
    finally:
        sink.close()
    with sqlite3.connect(tmp_path / "sink.db") as check:
        assert check.execute("select count(*), sum(cost_micros) from request_logs").fetchone() == (
            700,
            sum(range(700)),
        )
        total = check.execute(
            "select sum(requests), sum(cost_micros) from usage_rollups where dim = 'all'"
        ).fetchone()
        assert total == (700, sum(range(700)))
        keys = check.execute(
            "select count(*), max(requests) from usage_rollups where dim = 'key'"
        ).fetchone()
        assert keys == (700, 1)  # each key's one request, counted once
