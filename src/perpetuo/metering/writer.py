"""The request-log writer: off the request path, in batches, bounded, and never losing a
record quietly.

Requests hand records to `emit` (an append: no I/O, no lock, no encoding). A thread of the
writer's own turns them into rows and writes them through a bulk sink (store/bulk/), one
transaction per batch of up to `batch_size` rows with their rollups folded in memory; on
the event loop's thread it would be starved whenever the gateway is busy. What waits in
memory is bounded by bytes and age; past that, and whenever the database fails, records
are appended to a spill file (fsynced), and replayed from there once the database answers:
one replay chunk between live batches, so both progress. Replays are idempotent (rows carry
their request id; one already stored is skipped and not counted twice in rollups). When
the spill reaches its cap the writer reports itself full (readiness fails) and the records
that fit nowhere are dropped and counted, with an error logged at most once a minute.
With a journal (metering/journal.py), records pass through it on their way to the queue, so
a hard kill loses only the journal's last few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perpetuo.metering.backlog import SpillBacklog
from perpetuo.metering.journal import Journal, JournalPolicy
from perpetuo.metering.record import RequestRecord, encode_record
from perpetuo.metering.rows import write_batch as write_batch  # tools and tests import it here
from perpetuo.metering.rows import write_records
from perpetuo.metering.spill import Replay, SpillDir
from perpetuo.observability.log_limit import EveryMinute
from perpetuo.store.bulk import RequestLogSink, open_sink
from perpetuo.store.database import Database

log = logging.getLogger("perpetuo.usage")

PROBE_INTERVAL = 1.0  # seconds between attempts while the database is failing


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much may wait, and when the writer counts as degraded or full."""

    queue_max_bytes: int = 32 * 1024 * 1024  # memory, estimated (backlog.MEMORY_PER_ENCODED_BYTE)
    queue_max_age: float = 30.0
    spill_max_bytes: int = 2 * 1024**3
    spill_max_age: float = 24 * 3600.0
    degraded_after: float = 30.0  # writer lag (seconds) past which it reports degraded


class UsageWriter(SpillBacklog):
    def __init__(
        self,
        db: Database,
        spill_dir: Path,
        *,
        batch_size: int = 2000,
        flush_interval: float = 0.2,
        bounds: Bounds | None = None,
        retry_delays: tuple[float, ...] = (0.1, 0.5),
        lock_timeout: float = 2.0,
        journal_dir: Path | None = None,
        journal: JournalPolicy | None = None,
    ) -> None:
        self.db = db
        self.bounds = bounds or Bounds()
        self.spill = SpillDir(spill_dir, self.bounds.spill_max_bytes)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_delays = retry_delays
        self.lock_timeout = lock_timeout
        self._queue: deque[tuple[float, RequestRecord]] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: RequestLogSink | None = None
        self._replay: Replay | None = None
        self._failing = False
        self._next_probe = 0.0
        self._next_rescan = 0.0
        self._spill_full = False
        self._inflight_since: float | None = None  # enqueue time of the batch being written
        self._record_bytes = 1024.0  # running estimate, for the queue's byte bound
        self._alerts = EveryMinute(log)
        self._drain_deadline = float("inf")
        # Figures for metrics and tests (written by the writer thread only).
        self.written = 0  # rows inserted, live and replayed
        self.spilled = 0
        self.replayed = 0  # spilled records read back and committed
        self.dropped = 0
        self.last_flush_seconds = 0.0
        self.journal: Journal | None = None
        if journal_dir is not None:
            policy = journal or JournalPolicy()
            self.journal = Journal(
                journal_dir, policy, self._accept, self._held_since, self._alerts
            )
            self.emit = self.journal.emit  # type: ignore[method-assign]  # it feeds _accept

    # -- the request side --------------------------------------------------------------------

    def emit(self, record: RequestRecord) -> None:
        self._queue.append((time.monotonic(), record))
        if len(self._queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _accept(self, records: list[RequestRecord], journaled: float) -> None:
        """From the journal's thread: records now on disk, for the queue."""
        self._queue.extend([(journaled, record) for record in records])
        if len(self._queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _held_since(self) -> float | None:
        """Queue time of the oldest record neither written nor spilled yet. The queue's head
        is read before the batch in flight: `_take` marks a batch before popping it."""
        try:
            head: float | None = self._queue[0][0]
        except IndexError:
            head = None
        inflight = self._inflight_since
        if head is None or inflight is None:
            return inflight if head is None else head
        return min(head, inflight)

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.spill.prepare)
        if self.journal is not None:
            await asyncio.to_thread(self.journal.start, self.spill)
        self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
        self._thread.start()

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Write everything queued (for at most `drain_seconds`), spill the rest."""
        self._drain_deadline = time.monotonic() + drain_seconds
        if self.journal is not None:
            await asyncio.to_thread(self.journal.stop)
            vars(self).pop("emit", None)  # a straggler goes straight to the queue
        if self._thread is None:
            await asyncio.to_thread(self._finish)
        else:
            self._stopping.set()
            self._wake.set()
            await asyncio.to_thread(self._thread.join, drain_seconds + 2 * self.lock_timeout + 5)
            self._thread = None
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)

    async def replay_spills(self) -> int:
        """Replay every spill file that may be replayed now; returns the records replayed."""
        before = self.replayed
        await asyncio.to_thread(self._replay_all)
        return self.replayed - before

    # -- state, for metrics and readiness ----------------------------------------------------

    def lag_seconds(self) -> float:
        """Age of the oldest record not yet in the database (queued, being written, spilled)."""
        now = time.monotonic()
        ages = [0.0]
        with contextlib.suppress(IndexError):  # emptied meanwhile by the writer thread
            ages.append(now - self._queue[0][0])
        if (inflight := self._inflight_since) is not None:
            ages.append(now - inflight)
        if (oldest := self.spill.usage.oldest) is not None:
            ages.append(time.time() - oldest)
        return max(ages)

    def state(self) -> str:
        usage = self.spill.usage
        stale = usage.oldest is not None and time.time() - usage.oldest > self.bounds.spill_max_age
        if self._spill_full or stale:
            return "full"
        return "degraded" if self.lag_seconds() > self.bounds.degraded_after else "ok"

    def health(self) -> dict[str, Any]:
        state = self.state()
        usage = self.spill.usage
        return {
            "ok": state != "full",
            "state": state,
            "lag_seconds": round(self.lag_seconds(), 3),
            "queue_depth": self.queue_depth,
            "spill_bytes": usage.bytes,
            "spill_files": usage.files,
            "dropped": self.dropped,
        }

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval
        while not self._stopping.is_set():
            self._wake.wait(max(0.0, next_flush - time.monotonic()))
            self._wake.clear()
            if self._stopping.is_set():
                break
            now = time.monotonic()
            due = now >= next_flush
            if due:
                next_flush = now + self.flush_interval
            try:
                more = self._cycle(due)
            except Exception:  # a bug here must not end the thread: records keep coming
                log.exception("request log writer cycle failed")
                self._inflight_since = None
                more = False
            if more:
                self._wake.set()
        self._finish()

    def _cycle(self, due: bool) -> bool:
        """One round: bounds, live batches, one replay chunk. True when replay work remains."""
        now = time.monotonic()
        self._watch_journal(now)
        if now >= self._next_rescan:
            self._rescan(now)
        self._bound_queue(now)
        if self._failing:
            if now < self._next_probe:
                return False  # queued records wait for the next attempt (within the bounds)
            self._next_probe = now + PROBE_INTERVAL
            if self._queue:
                if not self._deliver(self._take(), retry=False):
                    self._spill_queued()
                    return False
            elif not self._probe():
                return False
            log.info("request log writes succeed again")
            self._failing = False
        while self._queue and (due or len(self._queue) >= self.batch_size):
            # What is left after full batches waits for the interval: writing it at once would
            # commit a handful of records per transaction under steady traffic.
            if not self._deliver(self._take(), retry=True):
                self._spill_queued()
                return False
            # A writer slower than the traffic stays in this loop: the bounds hold meanwhile.
            self._bound_queue(time.monotonic())
        return self._replay_chunk()

    def _watch_journal(self, now: float) -> None:
        """A journal stuck in a write (a hung disk) must not hold the request log up: records
        go straight to the queue until it moves again, unjournaled."""
        journal = self.journal
        if journal is None or not journal.running:
            return  # stopping: stop() decides where late records go
        bypassed = "emit" not in vars(self)
        if journal.stalled(now) and not bypassed:
            vars(self).pop("emit")
            log.error("request log journal stalled: records go on without it until it recovers")
        elif bypassed and not journal.stalled(now):
            self.emit = journal.emit  # type: ignore[method-assign]
            log.warning("request log journal writes again")

    def _finish(self) -> None:
        """At stop: write what is queued until the drain deadline, spill the rest."""
        if self._replay is not None:
            self._replay.release()
            self._replay = None
        while self._queue and not self._failing and time.monotonic() < self._drain_deadline:
            self._deliver(self._take(), retry=False)
        if self._queue:
            self._spill_records(self._take(len(self._queue)), bounded=True)
            self._inflight_since = None
        self._close_sink()

    def _take(self, count: int | None = None) -> list[RequestRecord]:
        """The next batch, marked in flight until `_deliver` or the spill settles it (marked
        before it leaves the queue, so the journal always finds it in one or the other)."""
        count = min(count or self.batch_size, len(self._queue))
        if count:
            self._inflight_since = self._queue[0][0]
        return [self._queue.popleft()[1] for _ in range(count)]

    def _deliver(self, batch: list[RequestRecord], *, retry: bool) -> bool:
        """Write a batch taken from the queue, or spill it; False when the write failed."""
        written = self._write(batch, retry=retry)
        if not written:
            self._spill_records(batch)
        self._inflight_since = None
        return written

    def _write(self, batch: list[RequestRecord], *, retry: bool, fresh: bool = True) -> bool:
        delays = (*self.retry_delays, None) if retry else (None,)
        for delay in delays:
            started = time.perf_counter()
            try:
                sink = self._sink or open_sink(self.db.url, lock_timeout=self.lock_timeout)
                self._sink = sink
                inserted = write_records(sink, batch, fresh=fresh)
            except Exception as exc:
                self._close_sink()
                self._note_failure(exc)
                if delay is None or self._stopping.wait(delay):
                    return False
                continue
            self.written += inserted
            self.last_flush_seconds = time.perf_counter() - started
            self._record_bytes += (len(encode_record(batch[0])) - self._record_bytes) * 0.1
            return True
        return False

    def _note_failure(self, exc: Exception) -> None:
        if not self._failing:
            log.warning("request log write failed (%s); records go to the spill", exc)
        else:
            self._alerts.log(logging.WARNING, "failing", "request log writes still fail (%s)", exc)
        self._failing = True
        self._next_probe = time.monotonic() + PROBE_INTERVAL

    def _probe(self) -> bool:
        try:
            sink = self._sink or open_sink(self.db.url, lock_timeout=self.lock_timeout)
            self._sink = sink
            sink.ping()
        except Exception:
            self._close_sink()
            return False
        return True

    def _close_sink(self) -> None:
        if self._sink is not None:
            sink, self._sink = self._sink, None
            try:
                sink.close()
            except Exception as exc:
                log.debug("closing the request log sink failed: %s", exc)
