"""The request-log writer: off the request path, in batches, and never losing a record.

Requests hand records to `emit` (no I/O, no await). A background task writes them in
batches (by size or after `flush_interval`), each batch in one transaction with its rollups.
If the database fails, the batch is retried briefly and then appended to a local spill file
(fsynced); spill files are replayed once the database answers again. Shutdown writes what
is queued, or spills it. Replays are idempotent: a record whose id is already stored is
skipped and not counted twice in rollups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from perpetuo.metering.record import RequestRecord, decode_record, encode_record
from perpetuo.metering.rollup import fold
from perpetuo.store.database import Database
from perpetuo.store.repos.usage import add_to_rollups, insert_logs, insert_new_logs

log = logging.getLogger("perpetuo.usage")

SPILL_SUFFIX = ".jsonl"
QUIET_BEFORE_REPLAY = 120.0  # seconds without appends before another process's file is replayed
ABANDONED_AFTER = 600.0  # a replay claimed this long ago by a process that died


class UsageWriter:
    def __init__(
        self,
        db: Database,
        spill_dir: Path,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_queue: int = 20_000,
        retry_delays: tuple[float, ...] = (0.1, 0.5),
    ) -> None:
        self.db = db
        self.spill_dir = spill_dir
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.retry_delays = retry_delays
        self._queue: deque[RequestRecord] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._spill_name = f"requests-{os.getpid()}-{secrets.token_hex(4)}{SPILL_SUFFIX}"
        self._db_failing = False
        # Figures for metrics and tests.
        self.written = 0
        self.spilled = 0
        self.replayed = 0
        self.last_flush_seconds = 0.0

    # -- the request side --------------------------------------------------------------------

    def emit(self, record: RequestRecord) -> None:
        self._queue.append(record)
        if len(self._queue) >= self.batch_size:
            self._wake.set()
        if len(self._queue) > self.max_queue:
            # The database is far behind: keep memory bounded, the disk keeps the records.
            overflow = [self._queue.popleft() for _ in range(self.batch_size)]
            self._spill(overflow)

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.spill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Write everything queued (for at most `drain_seconds`), spill the rest."""
        deadline = time.monotonic() + drain_seconds
        if self._task is not None:
            # Let a write in progress finish: cancelling it mid-commit can leave its
            # connection holding SQLite's write lock, and every later write then waits.
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), drain_seconds)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        while self._queue and time.monotonic() < deadline and not self._db_failing:
            batch = self._take()
            if not await self._write(batch, retry=False):
                self._spill(batch)
        if self._queue:
            self._spill(self._take(len(self._queue)))

    # -- background work ---------------------------------------------------------------------

    async def _run(self) -> None:
        next_replay = 0.0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            while self._queue and not self._stopping:
                batch = self._take()
                try:
                    written = await self._write(batch, retry=True)
                except asyncio.CancelledError:
                    # Shutdown mid-write: hand the batch back to stop() (a replay of rows
                    # that did commit is harmless: ids are unique).
                    self._queue.extendleft(reversed(batch))
                    raise
                if not written:
                    self._spill(batch)
                    break
                if len(self._queue) < self.batch_size:
                    # What arrived during the write waits for the next flush: writing it at
                    # once would commit a handful of records per transaction under steady
                    # traffic, a commit's fixed cost for each few requests.
                    break
            if self._stopping:
                return  # stop() writes what is left
            if not self._db_failing and time.monotonic() >= next_replay:
                next_replay = time.monotonic() + 5.0
                await self._replay_spills()

    def _take(self, count: int | None = None) -> list[RequestRecord]:
        count = min(count or self.batch_size, len(self._queue))
        return [self._queue.popleft() for _ in range(count)]

    async def _write(self, batch: list[RequestRecord], *, retry: bool) -> bool:
        delays = (*self.retry_delays, None) if retry else (None,)
        for delay in delays:
            started = time.perf_counter()
            try:
                await write_batch(self.db, batch)
            except Exception as exc:
                if not self._db_failing:
                    log.warning("request log write failed (%s); will retry, then spill", exc)
                self._db_failing = True
                if delay is None:
                    return False
                await asyncio.sleep(delay)
                continue
            if self._db_failing:
                log.info("request log writes succeed again")
            self._db_failing = False
            self.written += len(batch)
            self.last_flush_seconds = time.perf_counter() - started
            return True
        return False

    # -- spill files -------------------------------------------------------------------------

    def _spill(self, batch: list[RequestRecord]) -> None:
        """Append to this process's spill file and fsync: on disk before we let go of them."""
        if not batch:
            return
        self.spill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = b"".join(encode_record(record) + b"\n" for record in batch)
        fd = os.open(
            self.spill_dir / self._spill_name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.spilled += len(batch)
        log.warning("spilled %d request log records to %s", len(batch), self.spill_dir)

    async def _replay_spills(self) -> None:
        """Replay this process's spill file, and others' once they have been quiet for a
        while (their writer is gone, or has nothing more to add); a replay abandoned by a
        process that died is taken up again later."""
        now = time.time()
        for stale in self.spill_dir.glob(f"*{SPILL_SUFFIX}.replaying-*"):
            if now - _mtime(stale) > ABANDONED_AFTER:
                with contextlib.suppress(OSError):
                    stale.rename(stale.with_name(stale.name.split(".replaying-")[0]))
        for path in sorted(self.spill_dir.glob(f"*{SPILL_SUFFIX}")):
            if path.name != self._spill_name and now - _mtime(path) < QUIET_BEFORE_REPLAY:
                continue  # another live writer may still be appending to it
            claimed = path.with_name(f"{path.name}.replaying-{os.getpid()}")
            try:
                path.rename(claimed)  # atomic: one process replays each file
            except OSError:
                continue
            if not await self._replay_file(claimed):
                with contextlib.suppress(OSError):
                    claimed.rename(path)  # give it back for a later attempt
                return

    async def _replay_file(self, path: Path) -> bool:
        records = []
        with path.open("rb") as handle:
            for line in handle:
                if line.endswith(b"\n"):  # a torn last line (crash mid-write) is skipped
                    try:
                        records.append(decode_record(line))
                    except ValueError:
                        log.error("unreadable line in spill file %s skipped", path)
        for start in range(0, len(records), self.batch_size):
            if not await self._write(records[start : start + self.batch_size], retry=False):
                return False
        self.replayed += len(records)
        path.unlink()  # noqa: ASYNC240 (a local unlink; spill files are the rare degraded path)
        log.info("replayed %d spilled request log records", len(records))
        return True


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


async def write_batch(db: Database, batch: list[RequestRecord]) -> None:
    """Logs and their rollups in one transaction: both or neither. Records are normally new,
    so they are inserted plainly; if some were written before (a batch replayed after a
    commit whose answer was lost), the batch is written again skipping those."""
    rows = [record.row() for record in batch]
    try:
        async with db.begin() as conn:
            await insert_new_logs(conn, rows)
            await add_to_rollups(conn, _rollup_rows(batch))
    except IntegrityError:
        async with db.begin() as conn:
            inserted = await insert_logs(conn, rows)
            await add_to_rollups(conn, _rollup_rows([r for r in batch if r.id in inserted]))


def _rollup_rows(records: list[RequestRecord]) -> list[dict[str, Any]]:
    return [
        {"workspace_id": ws, "bucket": bucket, "dim": dim, "value": value, **counters}
        for (ws, bucket, dim, value), counters in fold(records).items()
    ]
