"""The request log's write-ahead journal: records on local disk within milliseconds of their
request's answer, so that a hard kill (SIGKILL, the OOM killer) loses only those milliseconds
instead of the writer's whole batch interval.

`emit` (on the event loop) appends to a deque and, once per batch, sets an event. A thread of
the journal's own wakes, takes everything pending, appends it as JSON lines to its current
segment file with one `write`, and only then hands the records to the writer's queue: a
record reaches the database only after it is in the journal. It then waits `interval`
seconds before the next batch, so a busy gateway pays one write per interval, not one per
request. A `write` that returned is in the kernel's page cache, which outlives the process;
surviving a power loss or a kernel crash also needs `fsync` (policy `interval`: once a
second; `always`: after every batch).

Segments rotate every second; a closed segment is deleted once the writer holds none of its
records (written or spilled). Each live segment is locked (`flock`) by its process; at
start-up, segments whose lock is free (their process is gone) are moved into the spill
directory and replayed from there, idempotently: a record that reached the database before
the kill is skipped, not stored or counted twice. A segment written on another host (a
shared volume, where locks may not reach) must also be quiet for as long as another
process's spill file before it is taken. A journal whose thread hangs in a write (a hung
disk) is bypassed by the writer until it moves again: it protects records, it must never
hold them up.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from perpetuo.metering.record import RequestRecord
from perpetuo.metering.spill import QUIET_BEFORE_REPLAY, SpillDir, mtime
from perpetuo.observability.log_limit import EveryMinute

log = logging.getLogger("perpetuo.usage")

SEGMENT_PREFIX = "journal-"
SEGMENT_SUFFIX = ".jsonl"
FSYNC_EVERY = 1.0  # seconds, for the `interval` policy
IDLE_WAKE = 1.0  # seconds between looks at old segments while no record arrives
STALLED_AFTER = 5.0  # seconds without a finished cycle (a hung disk): records bypass it

Fsync = Literal["never", "interval", "always"]


@dataclass(frozen=True, slots=True)
class JournalPolicy:
    interval: float = 0.01  # seconds between batches appended to the journal
    fsync: Fsync = "never"
    segment_seconds: float = 1.0  # a segment older than this is closed for a new one
    segment_max_bytes: int = 16 * 1024 * 1024


@dataclass(slots=True)
class Segment:
    path: Path
    fd: int  # kept open (and locked) until the segment is deleted
    opened: float  # time.monotonic()
    bytes: int = 0
    last: float = 0.0  # hand-over time (monotonic) of its last batch
    unsynced: bool = False


class Journal:
    """Appends records to segment files in `path`, then passes them on with `deliver`.

    `held_since` returns the hand-over time of the oldest record the writer still holds
    (queued or being written), or None: a closed segment whose last batch is older than that
    holds nothing the database lacks.
    """

    def __init__(
        self,
        path: Path,
        policy: JournalPolicy,
        deliver: Callable[[list[RequestRecord], float], None],
        held_since: Callable[[], float | None],
        alerts: EveryMinute,
    ) -> None:
        self.path = path
        self.policy = policy
        self._deliver = deliver
        self._held_since = held_since
        self._alerts = alerts
        self._host = host_label()
        self._stem = f"{SEGMENT_PREFIX}{self._host}-{os.getpid()}-{secrets.token_hex(4)}"
        self._number = 0
        self._pending: deque[RequestRecord] = deque()
        self._signal = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: Segment | None = None
        self._closed: list[Segment] = []
        self._encode = msgspec.json.Encoder().encode_lines
        self._last_fsync = 0.0
        self.beat = time.monotonic()  # when the thread last finished a cycle
        # Figures for tests and the bench (written by the journal thread only).
        self.appended = 0
        self.failed_writes = 0  # writes and fsyncs

    # -- the request side --------------------------------------------------------------------

    def emit(self, record: RequestRecord) -> None:
        self._pending.append(record)
        if not self._signal.is_set():  # once per batch: the thread clears it before taking
            self._signal.set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, spill: SpillDir) -> int:
        """Hand the segments of processes that are gone to `spill`; start the thread.
        Returns how many segments were taken over."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        adopted = self._adopt_orphans(spill)
        self._thread = threading.Thread(target=self._run, name="request-log-journal", daemon=True)
        self._thread.start()
        return adopted

    def stop(self) -> None:
        """Journal and hand over everything emitted so far, then stop the thread."""
        self._stopping.set()
        self._signal.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(30)
        if thread is not None and thread.is_alive():  # stuck in a write: hand over, unwritten
            pending = self._pending
            self._deliver([pending.popleft() for _ in range(len(pending))], time.monotonic())
        else:
            self._flush()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def stalled(self, now: float) -> bool:
        """Whether the thread has not finished a cycle for a long while (a hung disk)."""
        return now - self.beat > STALLED_AFTER

    def close(self) -> None:
        """After the writer stopped: delete the segments it holds nothing of; the rest stay
        (unlocked) for the next start to replay."""
        if self._current is not None:
            self._rotate()
        self._collect()
        for segment in self._closed:
            _close(segment.fd)
        self._closed = []

    # -- the journal thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._signal.wait(IDLE_WAKE)
            self._signal.clear()
            try:
                self._flush()
            except Exception:  # a bug here must not end the thread: records keep coming
                log.exception("request log journal cycle failed")
            self.beat = time.monotonic()
            # The records of the next `interval` gather into one batch (one write); a plain
            # sleep is the cheapest wait, and stop() waits for it at most this long.
            time.sleep(self.policy.interval)

    def _flush(self) -> None:
        pending = self._pending
        records = [pending.popleft() for _ in range(len(pending))]
        now = time.monotonic()
        if records:
            self._append(self._encode(records), len(records), now)
            self._deliver(records, now)
        self._maintain(now)

    def _append(self, data: bytes, count: int, now: float) -> None:
        """Write `data` to the current segment; a failure is logged and the records go on
        to the writer unjournaled (the journal protects them, it must not hold them up)."""
        try:
            segment = self._current or self._open(now)
            view = memoryview(data)
            while view:
                view = view[os.write(segment.fd, view) :]
            if self.policy.fsync == "always":
                os.fdatasync(segment.fd)
            else:
                segment.unsynced = True
        except OSError as exc:
            self.failed_writes += 1
            self._alerts.log(
                logging.ERROR,
                "journal",
                "request log journal write failed (%s): a hard kill now loses more records",
                exc,
            )
            if self._current is not None:
                self._rotate()
            return
        segment.bytes += len(data)
        segment.last = now
        self.appended += count

    def _maintain(self, now: float) -> None:
        current = self._current
        if current is not None:
            aged = now - current.opened >= self.policy.segment_seconds
            if aged or current.bytes >= self.policy.segment_max_bytes:
                self._rotate()
            elif (
                self.policy.fsync == "interval"
                and current.unsynced
                and now - self._last_fsync >= FSYNC_EVERY
            ):
                self._sync(current)
        self._collect()

    def _open(self, now: float) -> Segment:
        """A new segment, locked before it gets the name other processes look for."""
        self._number += 1
        path = self.path / f"{self._stem}-{self._number:06d}{SEGMENT_SUFFIX}"
        making = path.with_name(f".{path.name}.new")
        fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(making, path)
        except OSError:
            _close(fd)
            with contextlib.suppress(OSError):
                making.unlink()
            raise
        if self.policy.fsync != "never":
            _sync_directory(self.path)
        self._current = Segment(path, fd, now)
        return self._current

    def _rotate(self) -> None:
        segment, self._current = self._current, None
        if segment is None:
            return
        if segment.unsynced and self.policy.fsync != "never":
            self._sync(segment)
        self._closed.append(segment)

    def _sync(self, segment: Segment) -> None:
        try:
            os.fdatasync(segment.fd)
            segment.unsynced = False
        except OSError as exc:
            self.failed_writes += 1
            self._alerts.log(logging.ERROR, "journal", "request log journal fsync failed (%s)", exc)
        self._last_fsync = time.monotonic()

    def _collect(self) -> None:
        """Delete closed segments whose records the writer no longer holds."""
        if not self._closed:
            return
        held = self._held_since()
        keep: list[Segment] = []
        for segment in self._closed:
            if held is None or segment.last < held:
                with contextlib.suppress(OSError):
                    segment.path.unlink()
                _close(segment.fd)
            else:
                keep.append(segment)
        self._closed = keep

    # -- start-up ----------------------------------------------------------------------------

    def _adopt_orphans(self, spill: SpillDir) -> int:
        adopted = 0
        now = time.time()
        for path in sorted(self.path.iterdir()):
            name = path.name
            if name.startswith(f".{SEGMENT_PREFIX}") and name.endswith(".new"):
                _remove_if_unlocked(path)  # a crash between creating and naming a segment
                continue
            if not (name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX)):
                continue
            local = name.startswith(f"{SEGMENT_PREFIX}{self._host}-")
            if not local and now - mtime(path) < QUIET_BEFORE_REPLAY:
                continue  # another host's: its lock may not reach us, so wait until quiet
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue  # taken over by another process meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                _close(fd)
                continue  # its process is alive and journaling
            try:
                if os.fstat(fd).st_size == 0:
                    path.unlink()
                else:
                    spill.adopt(path)
                    adopted += 1
            except FileNotFoundError:
                pass  # taken over by another process starting at the same time
            except OSError as exc:
                log.warning("request log journal segment %s not taken over: %s", name, exc)
            finally:
                _close(fd)
        if adopted:
            log.info("replaying %d request log journal segments left by a hard stop", adopted)
        return adopted


def host_label() -> str:
    """This host's name as segment names carry it."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


def _remove_if_unlocked(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink()
    except OSError:
        pass
    finally:
        _close(fd)


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
