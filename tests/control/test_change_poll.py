"""The database poll of the change feed: a changed key or workspace is announced once per
change, though it stays inside the poll's overlap window for several polls."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from perpetuo.control.actor import Actor
from perpetuo.control.api_keys import KeyCreate, create_key
from perpetuo.control.changes import KEY, WORKSPACE
from perpetuo.store.schema import api_keys, workspaces
from perpetuo.store.timeutil import utcnow
from tests.support.people import make_user, make_workspace
from tests.support.plane import make_plane


async def test_each_change_is_announced_once_across_overlapping_polls(tmp_path):
    plane = await make_plane(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        owner = await make_user(plane)
        ws = await make_workspace(plane, {owner: "owner"})
        keys: list[str] = []
        spaces: list[str] = []
        plane.changes.subscribe(KEY, keys.append)
        plane.changes.subscribe(WORKSPACE, spaces.append)

        async def touch(table, ident: str) -> None:
            async with plane.db.begin() as conn:
                changed = utcnow() + dt.timedelta(milliseconds=1)
                await conn.execute(
                    update(table).where(table.c.id == ident).values(updated_at=changed)
                )

        async with plane.db.begin() as conn:
            now = utcnow()
            await conn.execute(
                update(workspaces).where(workspaces.c.id == ws).values(updated_at=now)
            )
        for _ in range(3):  # each poll looks back 10 s: the same change three times
            await plane.changes.poll_once()
        # Dropping the workspace's cached keys at every poll would send their requests to the
        # database for 10 s after each change, and fail them if it went down meanwhile.
        assert spaces.count(ws) == 1
        await touch(workspaces, ws)
        await plane.changes.poll_once()
        await plane.changes.poll_once()
        assert spaces.count(ws) == 2  # a later change is announced again
        actor = Actor(kind="user", user_id=owner)
        key, _ = await create_key(plane, actor, ws, KeyCreate(name="k"))
        keys.clear()  # the instance that made the key announced it itself
        await touch(api_keys, key["id"])
        for _ in range(3):
            await plane.changes.poll_once()
        assert keys == [key["id"]]
    finally:
        await plane.db.dispose()
