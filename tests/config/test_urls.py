"""Store and Redis URLs as operators copy them: completed with Perpetuo's drivers, or refused at
start-up with a message that names the setting (never a worker's traceback); other settings
are refused the same way."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from perpetuo.config import Settings
from perpetuo.config.urls import database_url, redis_url
from perpetuo.store.database import Database


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u@db/app?sslmode=require", "postgresql+asyncpg://u@db/app?ssl=require"),
        ("postgresql+asyncpg://u@db/app?ssl=disable", "postgresql+asyncpg://u@db/app?ssl=disable"),
        ("sqlite:////var/lib/p.db", "sqlite+aiosqlite:////var/lib/p.db"),
        ("sqlite+aiosqlite:///p.db", "sqlite+aiosqlite:///p.db"),
    ],
)
def test_database_urls_get_their_driver(given, used):
    assert database_url(given) == used


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("mysql://u@db/app", "unsupported database URL scheme 'mysql'"),
        ("postgresql+psycopg2://u@db/app", "unsupported database URL scheme"),
        ("db.example:5432/app", "unsupported database URL scheme"),
        ("postgresql://u@db:port/app", "Port could not be cast"),
        ("postgresql:///app", "no host"),
        ("postgresql://u@db/app?sslmode=on", "sslmode must be one of"),
    ],
)
def test_bad_database_urls_are_named(given, says):
    with pytest.raises(ValueError, match=says):
        database_url(given)


def test_redis_urls_are_checked():
    assert redis_url("redis://:pw@cache:6380/2") == "redis://:pw@cache:6380/2"
    assert redis_url("rediss://cache?db=3") == "rediss://cache?db=3"
    for bad in ("redis://cache:6379/0/1", "redis://cache/-1", "http://cache:6379", "redis://c:x"):
        with pytest.raises(ValueError):
            redis_url(bad)


async def test_a_libpq_style_url_reaches_real_postgresql(postgres):
    """What an operator pastes from a PostgreSQL provider connects as it is."""
    pasted = postgres.url("postgres").replace("postgresql+asyncpg://", "postgres://")
    settings = Settings(database_url=pasted + "?sslmode=disable")
    db = Database(settings.resolved_database_url())
    try:
        assert await db.ping() > 0
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("PERPETUO_REDIS_URL", "redis://127.0.0.1:6379/0/1", "the database must be a number"),
        ("PERPETUO_DATABASE_URL", "mysql://u:secret-pw@db/app", "unsupported database URL"),
        ("PERPETUO_SIGNUP", "everyone", "should be 'open', 'invite' or 'closed'"),
        ("PERPETUO_PORT", "70000", "less than or equal to 65535"),
    ],
)
def test_serve_names_the_bad_setting(tmp_path, setting, value, says):
    result = serve(tmp_path, "0", **{setting: value})
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {setting}: ")
    assert says in result.stderr
    assert "Traceback" not in result.stderr and "secret-pw" not in result.stderr


def test_serve_refuses_a_port_out_of_range(tmp_path):
    """Not a server that says it listens on a port no socket can have."""
    result = serve(tmp_path, "99999")
    assert result.returncode == 2 and "--port" in result.stderr
    assert "Uvicorn running" not in result.stderr


def serve(tmp_path, port: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`perpetuo serve --port <port>` with `env` over this environment (it should not start)."""
    return subprocess.run(
        [sys.executable, "-m", "perpetuo", "serve", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PERPETUO_DATA_DIR": str(tmp_path), **env},
    )
