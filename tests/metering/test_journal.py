"""The request log's write-ahead journal: records on disk before the database has them,
gone from disk once it has them, replayed once after a hard stop, never taken from a
process that is alive, and never in the way of the request log when the disk fails."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from perpetuo.metering import journal as journal_module
from perpetuo.metering.journal import Journal, JournalPolicy, host_label
from perpetuo.metering.record import encode_record
from perpetuo.metering.spill import QUIET_BEFORE_REPLAY
from perpetuo.metering.writer import UsageWriter, write_batch
from perpetuo.observability.metrics import GatewayMetrics
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from tests.metering.test_backlog import record, stored, until


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("journal-*.jsonl")) if path.exists() else []


def journaled_ids(path: Path) -> list[str]:
    return [
        line.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
        for segment in segments(path)
        for line in segment.read_bytes().splitlines()
    ]


@pytest.fixture
async def sqlite_db(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await upgrade(db)
    yield db
    await db.dispose()


async def test_records_are_on_disk_before_the_database_has_them_and_leave_it_after(
    sqlite_db, tmp_path
):
    journal = tmp_path / "journal"
    writer = UsageWriter(sqlite_db, tmp_path / "spill", flush_interval=60, journal_dir=journal)
    await writer.start()
    try:
        started = time.monotonic()
        for i in range(50):
            writer.emit(record(i))
        await until(lambda: len(journaled_ids(journal)) == 50, 5)
        # Within milliseconds (a loaded machine may add some), and ahead of the database.
        assert time.monotonic() - started < 1.0
        assert journaled_ids(journal) == [f"req_{i:08d}" for i in range(50)]
        assert writer.queue_depth == 50 and await stored(sqlite_db) == (0, 0, 0)
        await until(lambda: writer.journal.appended == 50, 5)
        metrics = GatewayMetrics(set(), set())
        metrics.refresh_request_log(writer.health(), metrics.request_log_totals(writer))
        assert "perpetuo_usage_journaled_records_total 50.0" in metrics.render()[0].decode()
    finally:
        await writer.stop()
    assert await stored(sqlite_db) == (50, 50, 50)
    assert not list(journal.iterdir())  # a clean stop leaves nothing to replay


async def test_written_segments_are_deleted_while_traffic_goes_on(sqlite_db, tmp_path):
    journal = tmp_path / "journal"
    policy = JournalPolicy(segment_seconds=0.05)
    writer = UsageWriter(
        sqlite_db, tmp_path / "spill", flush_interval=0.05, journal_dir=journal, journal=policy
    )
    await writer.start()
    try:
        for i in range(400):
            writer.emit(record(i))
            if i % 20 == 19:
                await asyncio.sleep(0.02)  # traffic spread over time
        await until(lambda: writer.written == 400, 10)
        # Everything is in the database: what the journal keeps is at most its open segment
        # and the one before it, not the whole history.
        await until(lambda: len(segments(journal)) <= 1, 5)
    finally:
        await writer.stop()
    assert await stored(sqlite_db) == (400, 400, 400)
    assert not segments(journal)


async def test_a_dead_process_journal_is_replayed_once_and_a_live_one_is_left_alone(
    store_url, tmp_path
):
    db = Database(store_url)
    await upgrade(db)
    journal, spill = tmp_path / "journal", tmp_path / "spill"
    journal.mkdir()
    host = host_label()
    records = [record(i) for i in range(130)]
    lines = [encode_record(r) + b"\n" for r in records]
    # Killed after committing its first 50 records, before deleting their segment.
    dead = journal / f"journal-{host}-1-dead-000001.jsonl"
    dead.write_bytes(b"".join(lines[:100]))
    await write_batch(db, records[:50])
    # Alive: it holds the lock on its segment.
    live = journal / f"journal-{host}-2-live-000001.jsonl"
    live.write_bytes(b"".join(lines[100:110]))
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    # Another host's, written to a moment ago: its lock may not reach this host.
    other = journal / "journal-elsewhere-3-far-000001.jsonl"
    other.write_bytes(b"".join(lines[110:130]))
    assert not socket.gethostname().startswith("elsewhere")

    writer = UsageWriter(db, spill, batch_size=30, flush_interval=0.05, journal_dir=journal)
    await writer.start()
    try:
        await until(lambda: writer.replayed >= 100 and writer.spill.usage.files == 0, 15)
        assert await stored(db) == (100, 100, 100)  # 50 skipped: stored and counted once
        assert live.exists() and other.exists()
    finally:
        await writer.stop()
        os.close(holder)  # the live process ends (as a kill would release its lock)

    quiet = time.time() - QUIET_BEFORE_REPLAY - 5
    os.utime(other, (quiet, quiet))
    writer = UsageWriter(db, spill, batch_size=30, flush_interval=0.05, journal_dir=journal)
    await writer.start()
    try:
        await until(lambda: writer.replayed == 30 and writer.spill.usage.files == 0, 15)
        assert await stored(db) == (130, 130, 130)
        assert not segments(journal)
    finally:
        await writer.stop()
        await db.dispose()


@pytest.mark.parametrize("fsync", ["never", "always"])
async def test_the_fsync_policy(sqlite_db, tmp_path, monkeypatch, fsync):
    synced: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(journal_module.os, "fdatasync", lambda fd: synced.append(fd) or real(fd))
    journal = tmp_path / "journal"
    writer = UsageWriter(
        sqlite_db,
        tmp_path / "spill",
        flush_interval=60,
        journal_dir=journal,
        journal=JournalPolicy(fsync=fsync),
    )
    await writer.start()
    try:
        for appended in (1, 2, 3):
            writer.emit(record(appended))
            await until(lambda n=appended: writer.journal.appended == n, 5)
        assert len(synced) == (3 if fsync == "always" else 0)
    finally:
        await writer.stop()


async def test_a_journal_that_cannot_write_holds_no_record_back(
    sqlite_db, tmp_path, monkeypatch, caplog
):
    def full(self, now):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Journal, "_open", full)
    caplog.set_level(logging.WARNING, "perpetuo.usage")
    writer = UsageWriter(
        sqlite_db, tmp_path / "spill", flush_interval=0.05, journal_dir=tmp_path / "journal"
    )
    await writer.start()
    try:
        for i in range(20):
            writer.emit(record(i))
        await until(lambda: writer.written == 20, 10)
        assert writer.journal.failed_writes >= 1
        assert "journal write failed" in caplog.text
        metrics = GatewayMetrics(set(), set())
        metrics.refresh_request_log(writer.health(), metrics.request_log_totals(writer))
        text = metrics.render()[0].decode()
        failures = f"perpetuo_usage_journal_failures_total {float(writer.journal.failed_writes)}"
        assert failures in text and "perpetuo_usage_journaled_records_total 0.0" in text
    finally:
        await writer.stop()
    assert await stored(sqlite_db) == (20, 20, 20)


async def test_a_journal_stuck_in_a_write_holds_no_record_back(
    sqlite_db, tmp_path, monkeypatch, caplog
):
    """A hung disk: records go on to the database without the journal, and through it again
    once it moves."""
    monkeypatch.setattr(journal_module, "STALLED_AFTER", 0.3)
    disk = threading.Event()
    append = Journal._append

    def hung(self, data, count, now):
        disk.wait(30)
        append(self, data, count, now)

    monkeypatch.setattr(Journal, "_append", hung)
    caplog.set_level(logging.WARNING, "perpetuo.usage")
    writer = UsageWriter(
        sqlite_db, tmp_path / "spill", flush_interval=0.05, journal_dir=tmp_path / "journal"
    )
    await writer.start()
    try:
        writer.emit(record(0))  # the journal's thread takes it and hangs writing it
        await until(lambda: "emit" not in vars(writer), 10)
        for i in range(1, 20):
            writer.emit(record(i))
        await until(lambda: writer.written == 19, 10)  # all but the one stuck in the journal
        assert "journal stalled" in caplog.text
        disk.set()
        await until(lambda: writer.written == 20 and "emit" in vars(writer), 10)
        writer.emit(record(20))
        await until(lambda: writer.journal.appended == 2, 5)  # journaled again
    finally:
        disk.set()
        await writer.stop()
    assert await stored(sqlite_db) == (21, 21, 21)
