"""The request-log writer when the database cannot keep up: bounded memory, the spill,
its metrics and readiness, and every record in the database exactly once afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy import func, select

from perpetuo.metering.backlog import MEMORY_PER_ENCODED_BYTE
from perpetuo.metering.record import RequestRecord, encode_record
from perpetuo.metering.spill import QUIET_BEFORE_REPLAY
from perpetuo.metering.writer import Bounds, UsageWriter
from perpetuo.observability.metrics import GatewayMetrics
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import request_logs, usage_rollups


def record(i: int) -> RequestRecord:
    return RequestRecord(
        id=f"req_{i:08d}",
        workspace_id="ws_default",
        created_at=time.time(),
        endpoint="chat",
        status=200,
        alias="gpt",
        provider="p",
        model="m",
        prompt_tokens=10,
        latency_ms=12.0,
    )


async def stored(db: Database) -> tuple[int, int, int]:
    """(rows, distinct ids, requests counted in the `all` rollup)."""
    async with db.connect() as conn:
        rows = await conn.scalar(select(func.count()).select_from(request_logs))
        ids = await conn.scalar(select(func.count(func.distinct(request_logs.c.id))))
        counted = await conn.scalar(
            select(func.sum(usage_rollups.c.requests)).where(usage_rollups.c.dim == "all")
        )
    return int(rows), int(ids), int(counted or 0)


@contextlib.asynccontextmanager
async def write_lock(db: Database) -> AsyncIterator[None]:
    """The database refuses the writer's inserts while this holds a lock on them."""
    if db.is_sqlite:
        conn = sqlite3.connect(db.url.database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    conn = await asyncpg.connect(db.url.set(drivername="postgresql").render_as_string(False))
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE request_logs, usage_rollups IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def until(check, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_writer_outrun_by_traffic_stays_bounded_and_loses_nothing(store_url, tmp_path):
    db = Database(store_url)
    await upgrade(db)
    bounds = Bounds(queue_max_bytes=100 * 250, queue_max_age=0.5, degraded_after=0.5)
    writer = UsageWriter(
        db,
        tmp_path / "spill",
        batch_size=100,
        flush_interval=0.05,
        bounds=bounds,
        retry_delays=(0.05,),
        lock_timeout=0.2,
    )
    metrics = GatewayMetrics(set(), set())
    await writer.start()
    deepest = 0
    try:
        async with write_lock(db):
            for i in range(3000):  # ~2,000 records a second, none of which the database takes
                writer.emit(record(i))
                deepest = max(deepest, writer.queue_depth)
                if i % 20 == 0:
                    await asyncio.sleep(0.01)
            await until(lambda: writer.spilled > 0 and writer.lag_seconds() > 0.5, 10)
            health = writer.health()
            assert health["ok"] and health["state"] == "degraded"  # lagging, but has room
            assert health["spill_bytes"] > 0 and health["spill_files"] >= 1
            metrics.refresh_request_log(health, {"written": writer.written})
            text = metrics.render()[0].decode()
            assert "perpetuo_usage_writer_state 1.0" in text
            assert "perpetuo_usage_spill_bytes 0.0" not in text
        # Memory held a bounded share: the rest went to disk as it aged or overflowed.
        assert deepest < 1500 and writer.spilled >= 1500
        await until(lambda: writer.written >= 3000 and writer.spill.usage.bytes == 0, 30)
        assert await stored(db) == (3000, 3000, 3000)  # every record once, counted once
        assert writer.health()["state"] == "ok" and writer.dropped == 0
        metrics.refresh_request_log(writer.health(), {"written": writer.written})
        assert "perpetuo_usage_rows_written_total 3000.0" in metrics.render()[0].decode()
    finally:
        await writer.stop()
        await db.dispose()


async def test_a_writer_that_writes_but_too_slowly_keeps_the_bound(tmp_path, monkeypatch):
    """Writes that succeed, each slower than the traffic: the writer stays in its drain loop,
    and the memory bound holds there too (it used to be checked only between loops)."""
    from perpetuo.metering import writer as writer_module

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    await upgrade(db)
    real = writer_module.write_records

    def slow(sink, batch, *, fresh):
        time.sleep(0.1)  # 100 records in 0.1 s: 1,000 a second at best
        return real(sink, batch, fresh=fresh)

    monkeypatch.setattr(writer_module, "write_records", slow)
    line = len(encode_record(record(0)))
    bound = 300  # records the bound holds: about 3 bytes of memory per encoded byte
    bounds = Bounds(queue_max_bytes=int(bound * line * MEMORY_PER_ENCODED_BYTE))
    writer = UsageWriter(db, tmp_path / "spill", batch_size=100, flush_interval=0.05, bounds=bounds)
    await writer.start()
    deepest = 0
    try:
        for i in range(4000):  # about 4,000 records a second, for a second
            writer.emit(record(i))
            if i % 40 == 0:
                await asyncio.sleep(0.01)
                deepest = max(deepest, writer.queue_depth)
        assert writer.spilled > 0
        assert deepest < 3 * bound  # was every record not yet written: over 2,500
        await until(lambda: writer.written >= 4000 and writer.spill.usage.bytes == 0, 60)
        assert await stored(db) == (4000, 4000, 4000)
    finally:
        await writer.stop()
        await db.dispose()


async def test_spilled_records_replay_when_the_database_returns_without_new_writes(
    store_url, tmp_path
):
    db = Database(store_url)
    await upgrade(db)
    writer = UsageWriter(
        db, tmp_path / "spill", batch_size=10, flush_interval=0.02, retry_delays=(0.01,)
    )
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # no tables: writes fail
    writer.db = broken
    await writer.start()
    try:
        for i in range(25):
            writer.emit(record(i))
        await until(lambda: writer.spilled == 25, 10)
        writer.db = db  # back, and no request arrives after this
        await until(lambda: writer.replayed == 25, 15)
        assert await stored(db) == (25, 25, 25)
        assert not list((tmp_path / "spill").iterdir())
    finally:
        await writer.stop()
        await broken.dispose()
        await db.dispose()


def _dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


async def test_a_replay_cut_short_by_a_crash_resumes_without_duplicates(store_url, tmp_path):
    """A process replayed part of a file and died: between committing a chunk and saving its
    offset, even. The next one takes the file up at once and stores each record once."""
    db = Database(store_url)
    await upgrade(db)
    spill = tmp_path / "spill"
    spill.mkdir()
    records = [record(i) for i in range(100)]
    name = "requests-1-dead.jsonl"
    (spill / name).write_bytes(b"".join(encode_record(r) + b"\n" for r in records))
    quiet = time.time() - QUIET_BEFORE_REPLAY - 5  # its writer is long gone
    os.utime(spill / name, (quiet, quiet))
    first = UsageWriter(db, spill, batch_size=30)
    first.spill.rescan()
    await asyncio.to_thread(first._replay_chunk)  # 30 committed, offset saved
    await asyncio.to_thread(first._replay_chunk)  # 60 committed, offset saved
    await asyncio.to_thread(first._close_sink)
    claimed = next(spill.glob("*.replaying-*"))
    offset_file = spill / f"{name}.offset"
    commits = [int(offset_file.read_text())]
    # The crash came after the second commit but before its offset was saved.
    offset_file.write_text(str(len(b"".join(encode_record(r) + b"\n" for r in records[:30]))))
    claimed.rename(spill / f"{name}.replaying-{_dead_pid()}")
    assert await stored(db) == (60, 60, 60) and commits[0] > 0

    second = UsageWriter(db, spill, batch_size=30, flush_interval=0.05)
    await second.start()
    try:
        await until(lambda: second.spill.usage.files == 0 and second.replayed >= 70, 15)
        assert await stored(db) == (100, 100, 100)  # records 30-59 went again: skipped
        assert not list(spill.iterdir())
    finally:
        await second.stop()
        await db.dispose()


async def test_a_full_spill_makes_the_writer_not_ready_and_says_so_once_a_minute(tmp_path, caplog):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # no tables: writes fail
    bounds = Bounds(queue_max_bytes=20 * 250, queue_max_age=0.1, spill_max_bytes=4096)
    writer = UsageWriter(
        db, tmp_path / "spill", batch_size=20, flush_interval=0.02, bounds=bounds, retry_delays=()
    )
    caplog.set_level(logging.WARNING, "perpetuo.usage")
    await writer.start()
    try:
        for i in range(400):
            writer.emit(record(i))
            if i % 20 == 0:
                await asyncio.sleep(0.02)
        await until(lambda: writer.dropped > 0, 10)
        await asyncio.sleep(0.3)
        health = writer.health()
        assert not health["ok"] and health["state"] == "full"
        assert health["spill_bytes"] <= 4096
        assert writer.spilled + writer.dropped + writer.queue_depth == 400  # all accounted for
        full = [r for r in caplog.records if "spill is full" in r.getMessage()]
        assert len(full) == 1 and full[0].levelno == logging.ERROR
    finally:
        await writer.stop()
        await db.dispose()
