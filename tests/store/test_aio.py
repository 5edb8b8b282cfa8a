"""The async connection layer over SQLAlchemy Core, on both engines: transactions commit or
roll back as their block ends, savepoints undo only their own work, a cancelled query gives
its connection back, and the gateway never loads SQLAlchemy's ORM."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from sqlalchemy import text

from perpetuo.store.database import Database


@pytest.fixture
async def db(store_url):
    database = Database(store_url)
    async with database.begin() as conn:
        await conn.execute(text("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)"))
    yield database
    await database.dispose()


async def names(db: Database) -> list[str]:
    async with db.connect() as conn:
        return list((await conn.scalars(text("SELECT name FROM things ORDER BY id"))).all())


async def test_a_transaction_commits_when_its_block_ends_cleanly(db):
    async with db.begin() as conn:
        await conn.execute(
            text("INSERT INTO things (id, name) VALUES (:id, :name)"),
            [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        )
        assert conn.in_transaction()
    assert await names(db) == ["a", "b"]
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM things")) == 2


async def test_a_transaction_rolls_back_when_its_block_raises(db):
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await conn.execute(text("INSERT INTO things (id, name) VALUES (1, 'lost')"))
            raise RuntimeError("the caller failed")
    assert await names(db) == []


async def test_a_savepoint_undoes_only_its_own_work(db):
    async with db.begin() as conn:
        await conn.execute(text("INSERT INTO things (id, name) VALUES (1, 'kept')"))
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            async with conn.begin_nested():
                await conn.execute(text("INSERT INTO things (id, name) VALUES (2, 'undone')"))
                await conn.execute(text("INSERT INTO things (id, name) VALUES (1, 'clash')"))
        await conn.execute(text("INSERT INTO things (id, name) VALUES (3, 'after')"))
    assert await names(db) == ["kept", "after"]


async def test_sync_code_runs_queries_through_run_sync(db):
    def count(sync_conn, table: str) -> int:
        return sync_conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()

    async with db.begin() as conn:
        await conn.execute(text("INSERT INTO things (id, name) VALUES (1, 'a')"))
        assert await conn.run_sync(count, "things") == 1


async def test_a_cancelled_query_gives_its_connection_back(db):
    pool = db.engine.sync_engine.pool
    slow = (
        "SELECT pg_sleep(5)"
        if db.dialect == "postgresql"
        # SQLite has no sleep: a recursive count long enough to be cancelled in flight.
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000000)"
        " SELECT count(*) FROM n"
    )

    async def query() -> None:
        async with db.connect() as conn:
            await conn.execute(text(slow))

    task = asyncio.create_task(query())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.checkedout() == 0
    assert await names(db) == []  # and the pool still serves


def test_the_gateway_does_not_load_the_orm():
    # The reason this layer exists: sqlalchemy.ext.asyncio imports the ORM (about 7 MiB).
    probe = "import sys, perpetuo.app; print('sqlalchemy.orm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
