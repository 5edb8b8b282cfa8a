"""The audit trail: secrets masked on the way in, filters and paging on the way out, and a
database that refuses to rewrite or erase it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from perpetuo.control import audit
from perpetuo.control.actor import Actor
from perpetuo.control.audit_query import AuditFilters, audit_view, platform_audit, workspace_audit
from perpetuo.schema.errors import GatewayError
from perpetuo.store.schema import audit_log
from tests.support.people import make_user, make_workspace
from tests.support.plane import make_plane


@pytest.fixture
async def plane(store_url):
    plane = await make_plane(store_url)
    yield plane
    await plane.db.dispose()


async def write(plane, actor, action, workspace_id, target_type, target_id, **changes):
    async with plane.db.begin() as conn:
        await audit.record(
            conn,
            actor,
            action,
            workspace_id=workspace_id,
            target_type=target_type,
            target_id=target_id,
            **changes,
        )


async def test_secrets_are_masked_wherever_they_are(plane):
    actor = Actor(kind="user", user_id="usr_x", ip="10.0.0.1", user_agent="ua")
    after = {
        "name": "k",
        "token": "pinv_secret",
        "nested": [{"password": "hunter22", "ok": 1}],
        "refresh_token": "prt_secret",
    }
    await write(plane, actor, "thing.create", "ws_default", "thing", "t1", after=after)
    async with plane.db.connect() as conn:
        row = (await conn.execute(select(audit_log))).one()
    assert row.after == {
        "name": "k",
        "token": "***",
        "nested": [{"password": "***", "ok": 1}],
        "refresh_token": "***",
    }
    assert (row.actor_type, row.actor_id, row.ip, row.user_agent) == (
        "user",
        "usr_x",
        "10.0.0.1",
        "ua",
    )


async def test_the_database_refuses_updates_and_deletes(plane):
    await write(plane, Actor(kind="system"), "thing.create", None, "thing", "t1")
    for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with plane.db.begin() as conn:
                await conn.execute(text(statement))
    async with plane.db.connect() as conn:
        rows = (await conn.execute(select(audit_log.c.action))).scalars().all()
    assert rows == ["thing.create"]


async def test_filters_and_paging(plane):
    owner, admin, viewer = await make_user(plane), await make_user(plane), await make_user(plane)
    ws = await make_workspace(plane, {owner: "owner", admin: "admin", viewer: "viewer"})
    other = await make_workspace(plane, {owner: "owner"})
    by_owner, by_admin = Actor(kind="user", user_id=owner), Actor(kind="user", user_id=admin)
    await write(plane, by_owner, "invite.create", ws, "invite", "inv_1")
    await write(plane, by_admin, "invite.revoke", ws, "invite", "inv_1")
    await write(plane, by_admin, "member.role_change", ws, "member", viewer)
    await write(plane, by_owner, "invite.create", other, "invite", "inv_2")
    await write(plane, by_owner, "user.update", None, "user", owner)

    async def ids(actor=by_admin, workspace=ws, **filters) -> list[str]:
        page = await workspace_audit(
            plane, actor, workspace, AuditFilters(**filters), limit=50, cursor=None
        )
        return [audit_view(r)["action"] for r in page.rows]

    assert await ids() == ["member.role_change", "invite.revoke", "invite.create"]
    assert await ids(action="invite.create") == ["invite.create"]
    assert await ids(actor_id=admin) == ["member.role_change", "invite.revoke"]
    assert await ids(target_type="invite") == ["invite.revoke", "invite.create"]
    assert await ids(target_id=viewer) == ["member.role_change"]
    async with plane.db.connect() as conn:
        stamps = (
            (
                await conn.execute(
                    select(audit_log.c.created_at)
                    .where(audit_log.c.workspace_id == ws)
                    .order_by(audit_log.c.id)
                )
            )
            .scalars()
            .all()
        )
    assert await ids(since=stamps[1]) == ["member.role_change", "invite.revoke"]
    assert await ids(until=stamps[1]) == ["invite.create"]
    naive = stamps[2].replace(tzinfo=None)  # a time without a zone is taken as UTC
    assert await ids(since=stamps[1], until=naive) == ["invite.revoke"]
    assert await ids(since=stamps[2] + dt.timedelta(seconds=1)) == []
    with pytest.raises(GatewayError) as exc:
        await ids(since=stamps[2], until=stamps[0])
    assert (exc.value.status, exc.value.param) == (422, "since")

    pages, cursor = [], None
    while True:
        page = await workspace_audit(plane, by_owner, ws, AuditFilters(), limit=2, cursor=cursor)
        pages.append([r.action for r in page.rows])
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert pages == [["member.role_change", "invite.revoke"], ["invite.create"]]

    with pytest.raises(GatewayError) as exc:
        await ids(actor=Actor(kind="user", user_id=viewer))  # viewers do not read the trail
    assert exc.value.status == 403
    with pytest.raises(GatewayError) as exc:
        await ids(workspace=other)  # the admin is not in `other`
    assert exc.value.status == 404

    root = Actor(kind="master", is_superadmin=True)
    platform = await platform_audit(plane, root, AuditFilters(), limit=50, cursor=None)
    assert [r.action for r in platform.rows] == ["user.update"]
    with pytest.raises(GatewayError) as exc:
        await platform_audit(plane, by_owner, AuditFilters(), limit=50, cursor=None)
    assert exc.value.status == 403
