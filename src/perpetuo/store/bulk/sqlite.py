"""The request-log sink for SQLite: `sqlite3` on the writer's thread, one `BEGIN IMMEDIATE`
transaction per batch (WAL, synchronous=NORMAL: a commit is a WAL append, fsynced at
checkpoints).

Rows go in as multi-row `INSERT ... VALUES (...), (...)` statements of up to `CHUNK` rows,
not `executemany`: sqlite3 gives up the interpreter lock around every statement it steps,
and `executemany` steps once per row. With the event loop's thread busy, taking the lock back
waits up to the switch interval (5 ms) each time: measured with a busy thread beside it,
`executemany` wrote a row per 9 ms, one statement per 100-250 rows a row per 64-133 µs (and
alone both take 15-19 µs a row). With `executemany` the writer fell behind at 3,000 requests
a second, its queue filling to its memory bound and spilling. 64 rows a statement keeps each
stretch of binding, done holding the lock, short for the loop.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import URL

from perpetuo.store.bulk import (
    LOG_COLUMNS,
    RollupsOf,
    Row,
    inserted_indexes,
    placeholders,
    rollup_upsert_parts,
)

_INSERT = f"INSERT INTO request_logs ({', '.join(LOG_COLUMNS)}) VALUES "  # noqa: S608
_INSERT_OR_IGNORE = _INSERT.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
_UPSERT = rollup_upsert_parts("max")  # SQLite: max() of two values
_ID_CHUNK = 500  # ids per `IN (...)` lookup (fewer if SQLite allows fewer variables)
CHUNK = 64  # rows per statement at most (fewer if SQLite allows fewer variables)


class SqliteSink:
    dialect = "sqlite"

    def __init__(self, url: URL, *, lock_timeout: float) -> None:
        database = url.database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ValueError("the request-log writer needs an SQLite database file")
        self.path = database
        self.lock_timeout = lock_timeout
        self._conn: sqlite3.Connection | None = None
        self._second = -1
        self._prefix = ""

    def stamp(self, epoch: float) -> Any:
        # The text SQLAlchemy stores for a DateTime on SQLite (queries compare these strings);
        # a batch's rows share a few seconds, so each second is formatted once.
        second = int(epoch)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((epoch - second) * 1_000_000):06d}"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.lock_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={int(self.lock_timeout * 1000)}")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def write(self, rows: Sequence[Row], rollups: RollupsOf, *, fresh: bool = True) -> int:
        if not rows:
            return 0
        conn = self._connection()
        try:
            if fresh:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    _insert(conn, _INSERT, "", rows)
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK")  # some were written before: the careful path
                else:
                    _insert(conn, *_UPSERT, rollups(None))
                    conn.execute("COMMIT")
                    return len(rows)
            conn.execute("BEGIN IMMEDIATE")  # holds the write lock: no one adds ids meanwhile
            ids = [row[0] for row in rows]
            present: set[str] = set()
            per_query = min(_ID_CHUNK, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
            for start in range(0, len(ids), per_query):
                chunk = ids[start : start + per_query]
                marks = ", ".join("?" * len(chunk))
                query = f"SELECT id FROM request_logs WHERE id IN ({marks})"  # noqa: S608
                present.update(found for (found,) in conn.execute(query, chunk))
            picked = inserted_indexes(rows, {i for i in ids if i not in present})
            _insert(conn, _INSERT_OR_IGNORE, "", [rows[i] for i in picked])
            _insert(conn, *_UPSERT, rollups(picked))
            conn.execute("COMMIT")
            return len(picked)
        except BaseException:
            self.close()  # rolls back; the next write starts on a fresh connection
            raise

    def ping(self) -> None:
        self._connection().execute("SELECT 1 FROM request_logs LIMIT 1").fetchall()

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def _insert(conn: sqlite3.Connection, head: str, tail: str, rows: Sequence[Row]) -> None:
    """`head` VALUES-tuples `tail` for `rows`, one statement per chunk (see the module's doc).
    Chunks are powers of two, so a table has a handful of statements' shapes, which sqlite3
    keeps prepared; a shape per batch size would fill its cache with large statements."""
    if not rows:
        return
    width = len(rows[0])
    most = max(1, min(CHUNK, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    mark = "(" + placeholders(width, "qmark") + ")"
    start = 0
    while start < len(rows):
        size = min(most, 1 << ((len(rows) - start).bit_length() - 1))
        part = rows[start : start + size]
        statement = head + ", ".join([mark] * size) + tail
        conn.execute(statement, list(itertools.chain.from_iterable(part)))
        start += size
