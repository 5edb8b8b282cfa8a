"""Spill files: request-log records the database could not take yet, on local disk.

Each process appends to its own JSON-lines file (fsynced before the records are let go).
Replays claim a file by renaming it (atomic: one process replays each file) and read it in
chunks; after each chunk is committed its end offset is saved beside the file, so a replay
cut short by a restart resumes where it was instead of starting over (and what it repeats
is harmless: inserts skip ids already stored). The directory is capped in bytes. Journal
segments left by a process that is gone (metering/journal.py) are adopted here and replayed
the same way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from perpetuo.metering.record import RequestRecord, decode_record

SPILL_SUFFIX = ".jsonl"
CLAIM = ".replaying-"
OFFSET_SUFFIX = ".offset"
QUIET_BEFORE_REPLAY = 120.0  # seconds without appends before another process's file is replayed
ABANDONED_AFTER = 600.0  # a replay claimed this long ago by a process that may still live


@dataclass(slots=True)
class SpillUsage:
    bytes: int = 0  # not replayed yet
    files: int = 0
    oldest: float | None = None  # created_at (epoch) of the oldest record not replayed


class SpillDir:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.own_name = f"requests-{os.getpid()}-{secrets.token_hex(4)}{SPILL_SUFFIX}"
        self.usage = SpillUsage()
        self._first_line: dict[tuple[str, int], float | None] = {}
        self._adopted: set[str] = set()  # replayed at once, like our own file

    def prepare(self) -> None:
        """Create the directory; give back replays this process's pid claimed in an earlier
        life (a container restarts with the same pid) or whose process is gone."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for claimed in self.path.glob(f"*{SPILL_SUFFIX}{CLAIM}*"):
            pid = claimed.name.rsplit(CLAIM, 1)[1]
            if not pid.isdigit() or int(pid) == os.getpid() or not _alive(int(pid)):
                _release(claimed)
        self.rescan()

    # -- writing -------------------------------------------------------------------------------

    def append(self, data: bytes) -> bool:
        """Append and fsync; False (nothing written) when the cap would be passed."""
        if self.usage.bytes + len(data) > self.max_bytes:
            return False
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path / self.own_name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.usage.bytes += len(data)
        return True

    def adopt(self, source: Path) -> None:
        """Move `source` (records in the spill's format, such as a journal segment whose
        process is gone) into the directory, to be replayed by this process at once."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"requests-{source.stem}{SPILL_SUFFIX}"
        source.rename(self.path / name)
        self._adopted.add(name)

    # -- replaying -----------------------------------------------------------------------------

    def claim_next(self) -> Replay | None:
        """The next file to replay: ours at once, others' once quiet for a while; replays
        abandoned long ago by a process that may still exist are taken up again too."""
        now = time.time()
        for stale in self.path.glob(f"*{SPILL_SUFFIX}{CLAIM}*"):
            if now - mtime(stale) > ABANDONED_AFTER:
                _release(stale)
        for path in sorted(self.path.glob(f"*{SPILL_SUFFIX}")):
            mine = path.name == self.own_name or path.name in self._adopted
            if not mine and now - mtime(path) < QUIET_BEFORE_REPLAY:
                continue  # another live writer may still be appending to it
            claimed = path.with_name(f"{path.name}{CLAIM}{os.getpid()}")
            try:
                path.rename(claimed)
            except OSError:
                continue
            self._adopted.discard(path.name)
            if path.name == self.own_name:  # later spills go to a new file, never onto this one
                self.own_name = f"requests-{os.getpid()}-{secrets.token_hex(4)}{SPILL_SUFFIX}"
            return Replay(path, claimed)
        return None

    def rescan(self) -> SpillUsage:
        """Bytes and files left to replay, and the age of their oldest record."""
        usage = SpillUsage()
        seen: dict[tuple[str, int], float | None] = {}
        if self.path.is_dir():
            for path in self.path.iterdir():
                name = path.name
                if not (name.endswith(SPILL_SUFFIX) or CLAIM in name):
                    continue
                original = path.with_name(name.split(CLAIM)[0])
                offset = _read_offset(original)
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                usage.bytes += max(0, size - offset)
                usage.files += 1
                key = (name, offset)
                if key in self._first_line:
                    first = self._first_line[key]
                else:
                    first = _first_created(path, offset)
                seen[key] = first
                if first is not None and (usage.oldest is None or first < usage.oldest):
                    usage.oldest = first
        self._first_line = seen
        self.usage = usage
        return usage


class Replay:
    """A claimed spill file, read in chunks from its saved offset."""

    def __init__(self, original: Path, claimed: Path) -> None:
        self.original = original
        self.claimed = claimed
        self.offset = _read_offset(original)
        self._handle = claimed.open("rb")
        self._handle.seek(self.offset)
        self.unreadable = 0

    def read(self, count: int) -> tuple[list[RequestRecord], int, bool]:
        """Up to `count` records, the offset just past them, and whether the file is done."""
        records: list[RequestRecord] = []
        position = self._handle.tell()
        while len(records) < count:
            line = self._handle.readline()
            if not line.endswith(b"\n"):  # the end, or a torn last line (crash mid-write)
                return records, position, True
            position += len(line)
            try:
                records.append(decode_record(line))
            except ValueError:
                self.unreadable += 1
        return records, position, False

    def commit(self, offset: int) -> None:
        """Records before `offset` are in the database."""
        self.offset = offset
        marker = self.original.with_name(self.original.name + OFFSET_SUFFIX)
        temporary = marker.with_name(marker.name + ".tmp")
        temporary.write_text(str(offset))
        temporary.replace(marker)

    def finish(self) -> None:
        self._handle.close()
        self.claimed.unlink(missing_ok=True)
        self.original.with_name(self.original.name + OFFSET_SUFFIX).unlink(missing_ok=True)

    def release(self) -> None:
        """Give the file back (its offset stays) for a later attempt or another process."""
        self._handle.close()
        _release(self.claimed)


def _release(claimed: Path) -> None:
    with contextlib.suppress(OSError):
        claimed.rename(claimed.with_name(claimed.name.split(CLAIM)[0]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_offset(original: Path) -> int:
    try:
        return int(original.with_name(original.name + OFFSET_SUFFIX).read_text())
    except (OSError, ValueError):
        return 0


def _first_created(path: Path, offset: int) -> float | None:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            line = handle.readline()
        return decode_record(line).created_at if line.endswith(b"\n") else None
    except (OSError, ValueError):
        return None


def mtime(path: Path) -> float:
    """The file's modification time; now, when it is gone (so it counts as recent)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
