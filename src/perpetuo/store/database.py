"""The database handle: one async engine per process, with per-engine settings.

An SQLite database is private to the account that runs the gateway: its directory is made
0700 when we create it, and the database file 0600 before SQLite opens it. SQLite gives the
`-wal` and `-shm` files it creates the mode of the database file; files left by an older
version are tightened at start-up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from perpetuo.store.aio import AsyncConnection, AsyncEngine

_encode_json = msgspec.json.Encoder().encode


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # JSON columns (tags, traces) are written per request log row: msgspec, not json.
        options: dict[str, Any] = {"echo": echo, "json_serializer": _json_text}
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                make_private(Path(database))
            options["connect_args"] = {"timeout": 15}
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800)
        self.engine = AsyncEngine(self.url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def begin(self) -> Any:
        """A connection in a transaction, committed on success: `async with db.begin() as c`."""
        return self.engine.begin()

    def connect(self) -> Any:
        return self.engine.connect()

    async def ping(self) -> float:
        """Seconds a trivial query takes; raises if the database is unreachable."""
        started = time.perf_counter()
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return time.perf_counter() - started

    async def dispose(self) -> None:
        await self.engine.dispose()


def make_private(path: Path) -> None:
    """The database file (created if absent) and its WAL and shared-memory files: 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except (FileNotFoundError, PermissionError):
            continue  # absent, or not ours to change (a read-only deployment)


def _json_text(value: Any) -> str:
    return _encode_json(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


__all__ = ["AsyncConnection", "Database"]
