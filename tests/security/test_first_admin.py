"""The first account administers the platform: exactly one, however many people sign up at
the same moment on a fresh database, on SQLite and PostgreSQL, with sign-up open or closed."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from perpetuo.store.database import Database
from perpetuo.store.schema import users
from tests.support.gateway import GatewayProcess

PASSWORD = "correct horse battery 9"
PEOPLE = 20


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("postgres").create_database(f"claim_{uuid.uuid4().hex[:12]}")


async def _sign_up_together(url: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        return await asyncio.gather(
            *(
                http.post(
                    "/api/auth/signup", json={"email": f"p{i}@example.com", "password": PASSWORD}
                )
                for i in range(PEOPLE)
            )
        )


async def _count_superadmins(url: str) -> tuple[int, int]:
    db = Database(url)
    try:
        async with db.connect() as conn:
            admins = await conn.scalar(
                select(func.count()).select_from(users).where(users.c.is_superadmin)
            )
            total = await conn.scalar(select(func.count()).select_from(users))
    finally:
        await db.dispose()
    return int(admins or 0), int(total or 0)


@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_concurrent_first_sign_ups_make_exactly_one_platform_admin(
    database_url, tmp_path, policy
):
    env = {"PERPETUO_DATABASE_URL": database_url, "PERPETUO_SIGNUP": policy}
    with GatewayProcess({"models": {}}, tmp_path / "gw", env=env) as gateway:
        replies = await _sign_up_together(gateway.url)

    created = [r for r in replies if r.status_code == 201]
    admins = [r for r in created if r.json()["data"]["user"]["is_superadmin"]]
    assert len(admins) == 1, [r.json() for r in replies]
    if policy == "open":
        assert len(created) == PEOPLE  # everyone else is an ordinary account
    else:
        refused = [r for r in replies if r.status_code == 403]
        assert len(created) == 1 and len(refused) == PEOPLE - 1
        for reply in refused:
            error = reply.json()["error"]
            assert "Sign-up is closed" in error["message"]
    assert not [r for r in replies if r.status_code >= 500]
    assert await _count_superadmins(database_url) == (1, len(created))


async def test_a_later_sign_up_never_becomes_admin(database_url, tmp_path):
    """Claimed once, for good: later accounts are ordinary even after the first is gone."""
    env = {"PERPETUO_DATABASE_URL": database_url, "PERPETUO_SIGNUP": "open"}
    with GatewayProcess({"models": {}}, tmp_path / "gw", env=env) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            first = await http.post(
                "/api/auth/signup", json={"email": "a@example.com", "password": PASSWORD}
            )
            assert first.json()["data"]["user"]["is_superadmin"] is True
            db = Database(database_url)
            try:
                async with db.begin() as conn:
                    await conn.execute(users.delete())
            finally:
                await db.dispose()
            later = await http.post(
                "/api/auth/signup", json={"email": "b@example.com", "password": PASSWORD}
            )
    assert later.status_code == 201, later.text
    assert later.json()["data"]["user"]["is_superadmin"] is False
