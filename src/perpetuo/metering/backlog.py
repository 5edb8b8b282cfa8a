"""The request-log writer's disk side: what may wait in memory, the spill, and its replay.

Mixed into `UsageWriter` (metering/writer.py) and run on its thread only. Records past the
queue's bounds, and every batch the database refuses, are appended to the spill; one
replay chunk runs between live batches so both progress; a full spill sends records back
to the queue, or (past the bounds) drops and counts them.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from perpetuo.metering.record import RequestRecord, encode_record
from perpetuo.metering.spill import Replay, SpillDir
from perpetuo.observability.log_limit import EveryMinute

if TYPE_CHECKING:
    from perpetuo.metering.writer import Bounds

log = logging.getLogger("perpetuo.usage")

# A queued record held as objects takes about twice its encoded size (tracemalloc: 917 bytes
# for a 469-byte line), and RSS grew by about 3 KB per queued record under load: the queue's
# byte bound counts memory, estimated as this multiple of the encoded size.
MEMORY_PER_ENCODED_BYTE = 3.0
RESCAN_INTERVAL = 1.0  # seconds between looks at the spill directory


class SpillBacklog:
    """The spill half of `UsageWriter`: these attributes are the writer's."""

    bounds: Bounds
    spill: SpillDir
    batch_size: int
    spilled: int
    replayed: int
    dropped: int
    _queue: deque[tuple[float, RequestRecord]]
    _inflight_since: float | None
    _record_bytes: float
    _spill_full: bool
    _replay: Replay | None
    _next_rescan: float
    _alerts: EveryMinute
    _take: Callable[..., list[RequestRecord]]
    _close_sink: Callable[[], None]
    _write: Callable[..., bool]

    def _bound_queue(self, now: float) -> None:
        """Records past the queue's byte or age bound go to the spill (oldest first)."""
        queue = self._queue
        held = self._record_bytes * MEMORY_PER_ENCODED_BYTE
        excess = len(queue) - int(self.bounds.queue_max_bytes / held)
        victims = self._take(excess) if excess > 0 else []
        cutoff = now - self.bounds.queue_max_age
        while queue and queue[0][0] < cutoff:
            if not victims:
                self._inflight_since = queue[0][0]
            victims.append(queue.popleft()[1])
        if victims:
            self._spill_records(victims, bounded=True)
            self._inflight_since = None

    def _spill_queued(self) -> None:
        """While the database fails, what is queued goes to disk (while the spill has room)."""
        if self._queue and not self._spill_full:
            self._spill_records(self._take(len(self._queue)))
            self._inflight_since = None

    def _spill_records(self, records: list[RequestRecord], *, bounded: bool = False) -> None:
        """To disk; when the spill is full, back to the queue, or (`bounded`: they are past
        the queue's bounds) dropped and counted."""
        if not records:
            return
        data = b"".join(encode_record(record) + b"\n" for record in records)
        self._record_bytes = len(data) / len(records)
        if self.spill.append(data):
            self.spilled += len(records)
            self._alerts.log(
                logging.WARNING,
                "spilled",
                "request log is behind: %d records spilled to %s (%d bytes waiting)",
                len(records),
                self.spill.path,
                self.spill.usage.bytes,
            )
            return
        self._spill_full = True
        if not bounded:  # back with the time they were taken at, for the bounds and the journal
            since = self._inflight_since or time.monotonic()
            self._queue.extendleft((since, r) for r in reversed(records))
            return
        self.dropped += len(records)
        self._alerts.log(
            logging.ERROR,
            "dropped",
            "request log spill is full (%d bytes): %d records dropped; not ready until it drains",
            self.spill.max_bytes,
            len(records),
        )

    def _rescan(self, now: float) -> None:
        self._next_rescan = now + RESCAN_INTERVAL
        usage = self.spill.rescan()
        if self._spill_full and usage.bytes < self.spill.max_bytes * 0.9:
            self._spill_full = False

    def _replay_chunk(self) -> bool:
        """Replay up to one batch of spilled records; True when more is waiting."""
        if self._replay is None:
            if self.spill.usage.files == 0:
                return False
            self._replay = self.spill.claim_next()
            if self._replay is None:
                return False
        records, end, done = self._replay.read(self.batch_size)
        if records:
            if not self._write(records, retry=False, fresh=False):
                self._replay.release()
                self._replay = None
                return False
            self._replay.commit(end)
            self.replayed += len(records)
        if not done:
            return True
        replay, self._replay = self._replay, None
        replay.finish()
        if replay.unreadable:
            log.error("%d unreadable lines skipped in %s", replay.unreadable, replay.original)
        log.info("replayed spill file %s", replay.original.name)
        self._rescan(time.monotonic())
        return self.spill.usage.files > 0

    def _replay_all(self) -> None:
        self._rescan(time.monotonic())
        while self._replay_chunk():
            pass
        self._close_sink()
