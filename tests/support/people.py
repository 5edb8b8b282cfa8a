"""Accounts, sessions and workspaces made straight in the store, for tests about something else.

An argon2 hash costs a fifth of a second, so every account made here shares one hash
(of PASSWORD), computed once; the sign-up and sign-in paths themselves are tested apart.
"""

from __future__ import annotations

import functools

from sqlalchemy import insert

from perpetuo.auth.passwords import hash_password
from perpetuo.control import sessions
from perpetuo.control.plane import ControlPlane
from perpetuo.store.ids import new_id
from perpetuo.store.schema import memberships, users, workspaces
from perpetuo.store.timeutil import utcnow

PASSWORD = "Correct-horse-42"


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


async def make_user(
    plane: ControlPlane, email: str | None = None, *, superadmin: bool = False
) -> str:
    user_id = new_id("usr")
    async with plane.db.begin() as conn:
        await conn.execute(
            insert(users).values(
                id=user_id,
                email=email or f"{user_id}@example.com",
                name="",
                created_at=utcnow(),
                password_hash=password_hash(),
                is_superadmin=superadmin,
            )
        )
    return user_id


async def sign_in(plane: ControlPlane, user_id: str) -> sessions.Tokens:
    async with plane.db.begin() as conn:
        return await sessions.open_session(conn, plane, user_id, sessions.ClientInfo())


async def make_workspace(plane: ControlPlane, members: dict[str, str]) -> str:
    """A workspace with the given {user_id: role} members."""
    workspace_id = new_id("ws")
    now = utcnow()
    async with plane.db.begin() as conn:
        await conn.execute(
            insert(workspaces).values(
                id=workspace_id,
                name="test",
                settings={},
                created_at=now,
                updated_at=now,
                routing_version=0,
            )
        )
        for user_id, role in members.items():
            await conn.execute(
                insert(memberships).values(
                    workspace_id=workspace_id,
                    user_id=user_id,
                    role=role,
                    created_at=now,
                )
            )
    return workspace_id
