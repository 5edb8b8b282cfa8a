"""The request-log sink for SQLite: `sqlite3` on the writer's thread, `executemany` in one
`BEGIN IMMEDIATE` transaction per batch (WAL, synchronous=NORMAL: a commit is a WAL append,
fsynced at checkpoints)."""

from __future__ import annotations

import contextlib
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
    rollup_upsert,
)

_MARKS = placeholders(len(LOG_COLUMNS), "qmark")
_INSERT = f"INSERT INTO request_logs ({', '.join(LOG_COLUMNS)}) VALUES ({_MARKS})"  # noqa: S608
_INSERT_OR_IGNORE = _INSERT.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
_UPSERT = rollup_upsert("qmark", "max")  # SQLite: max() of two values
_ID_CHUNK = 500  # ids per `IN (...)` lookup, well under SQLite's variable limit


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
                    conn.executemany(_INSERT, rows)
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK")  # some were written before: the careful path
                else:
                    conn.executemany(_UPSERT, rollups(None))
                    conn.execute("COMMIT")
                    return len(rows)
            conn.execute("BEGIN IMMEDIATE")  # holds the write lock: no one adds ids meanwhile
            ids = [row[0] for row in rows]
            present: set[str] = set()
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                marks = ", ".join("?" * len(chunk))
                query = f"SELECT id FROM request_logs WHERE id IN ({marks})"  # noqa: S608
                present.update(found for (found,) in conn.execute(query, chunk))
            picked = inserted_indexes(rows, {i for i in ids if i not in present})
            conn.executemany(_INSERT_OR_IGNORE, [rows[i] for i in picked])
            conn.executemany(_UPSERT, rollups(picked))
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
