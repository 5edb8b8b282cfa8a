"""The database handle: one async engine per process, with per-engine settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_encode_json = msgspec.json.Encoder().encode


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # JSON columns (tags, traces) are written per request log row: msgspec, not json.
        options: dict[str, Any] = {"echo": echo, "json_serializer": _json_text}
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 15}
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
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
