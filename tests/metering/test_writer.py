"""The request-log writer: batches, rollups, idempotent replays, spill and recovery."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from perpetuo.metering.record import RequestRecord
from perpetuo.metering.rollup import latency_column
from perpetuo.metering.writer import UsageWriter
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import request_logs, usage_rollups


def record(i: int, **fields) -> RequestRecord:
    base = dict(
        id=f"req_{i}",
        workspace_id="ws_default",
        created_at=time.time(),
        endpoint="chat",
        status=200,
        alias="gpt",
        provider="p",
        model="m",
        key_id="key_a",
        prompt_tokens=10,
        completion_tokens=5,
        cost_micros=7,
        latency_ms=120.0,
        tags=["t1"],
    )
    return RequestRecord(**(base | fields))


async def count(db: Database) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(request_logs)))


async def rollup(db: Database, dim: str = "all", value: str = ""):
    async with db.connect() as conn:
        return (
            await conn.execute(
                select(usage_rollups).where(
                    usage_rollups.c.dim == dim, usage_rollups.c.value == value
                )
            )
        ).all()


async def test_batches_and_rollups(store_url, tmp_path):
    db = Database(store_url)
    await upgrade(db)
    writer = UsageWriter(db, tmp_path / "spill", batch_size=50, flush_interval=0.05)
    await writer.start()
    try:
        for i in range(120):
            writer.emit(record(i, status=500 if i % 10 == 0 else 200))
        deadline = time.monotonic() + 5
        while await count(db) < 120 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await count(db) == 120
        [row] = await rollup(db)
        assert (row.requests, row.errors, row.prompt_tokens, row.cost_micros) == (
            120,
            12,
            1200,
            840,
        )
        assert getattr(row, latency_column(120.0)) == 120  # every request took 120 ms
        assert row.latency_max_ms == 120.0
        assert (await rollup(db, "tag", "t1"))[0].requests == 120
        assert (await rollup(db, "key", "key_a"))[0].completion_tokens == 600
    finally:
        await writer.stop()
        await db.dispose()


async def test_full_batches_go_at_once_and_a_remainder_waits_for_the_interval(tmp_path):
    """Steady traffic must not turn into a commit per handful of records: what is left after
    the full batches waits for the next flush instead of being written straight away."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await upgrade(db)
    writer = UsageWriter(db, tmp_path / "spill", batch_size=10, flush_interval=1.0)
    await writer.start()
    try:
        for i in range(25):
            writer.emit(record(i))
        deadline = time.monotonic() + 0.5
        while writer.written < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert writer.written == 20 and writer.queue_depth == 5
        await asyncio.sleep(0.2)
        assert writer.written == 20  # not a third transaction for 5 records
        deadline = time.monotonic() + 2.0
        while writer.written < 25 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert await count(db) == 25
    finally:
        await writer.stop()
        await db.dispose()


async def test_replayed_records_are_not_counted_twice(store_url, tmp_path):
    from perpetuo.metering.writer import write_batch

    db = Database(store_url)
    await upgrade(db)
    try:
        batch = [record(i) for i in range(5)]
        await write_batch(db, batch)
        await write_batch(db, [*batch, record(5)])
        assert await count(db) == 6
        assert (await rollup(db))[0].requests == 6
    finally:
        await db.dispose()


async def test_database_outage_spills_then_replays(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    await upgrade(db)
    writer = UsageWriter(
        db, tmp_path / "spill", batch_size=10, flush_interval=0.02, retry_delays=(0.01,)
    )
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'nope' / 'x.db'}")
    writer.db = broken  # every write fails: no such tables
    await writer.start()
    for i in range(35):
        writer.emit(record(i))
    deadline = time.monotonic() + 5
    while writer.spilled < 35 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert writer.spilled == 35 and await count(db) == 0
    writer.db = db  # the database is back
    writer.emit(record(99))
    deadline = time.monotonic() + 10
    while await count(db) < 36 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await writer.stop()
    assert await count(db) == 36 and writer.replayed == 35
    assert not list((tmp_path / "spill").glob("*.jsonl"))
    await broken.dispose()
    await db.dispose()


async def test_stop_writes_or_spills_everything(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    await upgrade(db)
    writer = UsageWriter(db, tmp_path / "spill", batch_size=1000, flush_interval=60)
    await writer.start()
    for i in range(250):
        writer.emit(record(i))
    await writer.stop()
    assert await count(db) == 250
    await db.dispose()


async def test_spill_files_of_others_wait_until_quiet_and_abandoned_replays_resume(tmp_path):
    import os

    from perpetuo.metering.record import encode_record
    from perpetuo.metering.spill import ABANDONED_AFTER, QUIET_BEFORE_REPLAY

    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    await upgrade(db)
    spill = tmp_path / "spill"
    spill.mkdir()
    fresh = spill / "requests-1-aaaa.jsonl"  # another instance, still spilling
    fresh.write_bytes(encode_record(record(1)) + b"\n")
    quiet = spill / "requests-2-bbbb.jsonl"  # another instance, quiet for long
    quiet.write_bytes(encode_record(record(2)) + b"\n")
    old = time.time() - QUIET_BEFORE_REPLAY - 5
    os.utime(quiet, (old, old))
    abandoned = spill / "requests-3-cccc.jsonl.replaying-999999"  # its replayer died
    abandoned.write_bytes(encode_record(record(3)) + b"\n")
    older = time.time() - ABANDONED_AFTER - 5
    os.utime(abandoned, (older, older))
    writer = UsageWriter(db, spill)
    await writer.replay_spills()
    await writer.replay_spills()
    assert await count(db) == 2  # records 2 and 3; record 1's file is left to its writer
    assert fresh.exists() and not quiet.exists() and not list(spill.glob("*replaying*"))
    await db.dispose()
