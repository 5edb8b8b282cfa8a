"""Workspaces at the service level: settings validation and storage, routing refresh on change,
who sees which workspace, deletion (and what it takes with it), and invite expiry."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from perpetuo.control import api_keys, invites, members, workspaces
from perpetuo.control.actor import Actor
from perpetuo.control.changes import KEY, WORKSPACE
from perpetuo.schema.errors import GatewayError
from perpetuo.store.schema import api_keys as api_keys_table
from perpetuo.store.schema import invites as invites_table
from perpetuo.store.schema import memberships
from perpetuo.store.schema import workspaces as workspaces_table
from tests.support.people import make_user, make_workspace
from tests.support.plane import make_plane


@pytest.fixture
async def plane(store_url):
    plane = await make_plane(store_url)
    yield plane
    await plane.db.dispose()


# Defaults a user relies on. Settings added later need no change here: the whole view is
# compared with the model's defaults, and these are checked to be among them.
KNOWN_DEFAULTS = {
    "default_strategy": "default",
    "log_retention_days": 30,
    "log_request_bodies": False,
    "response_retention_days": 30,
    "chat_session_retention_days": 30,
    # Limits, budgets and credits: all unset (no plan: no limits).
    "plan": None,
    "limits": None,
    "user_limits": None,
    "budget_usd": None,
    "budget_period": None,
    "budget_soft_usd": None,
    "credits_required": False,
    "alert_webhook_url": None,
    "cache": None,  # response cache and guardrails: off until set (docs/caching.md)
    "guardrails": None,
    "cors_origins": None,  # browser origins besides the server's own (docs/api.md#cors)
}


def settings_with(**changed: object) -> dict[str, object]:
    """Every setting at its default, `changed` over them."""
    return {**workspaces.WorkspaceSettings().model_dump(), **changed}


def test_every_setting_has_its_known_default_and_can_be_patched():
    defaults = settings_with()
    assert KNOWN_DEFAULTS.items() <= defaults.items()
    # A setting that could not be patched (or reset with null) could never be changed.
    assert set(workspaces.SettingsPatch.model_fields) == set(defaults)


def person(user_id: str) -> Actor:
    return Actor(kind="user", user_id=user_id)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"default_strategy": "random"}, "default_strategy"),
        ({"log_retention_days": 0}, "log_retention_days"),
        ({"log_retention_days": 3651}, "log_retention_days"),
        ({"log_retention_days": "30"}, "log_retention_days"),
        ({"log_request_bodies": "yes"}, "log_request_bodies"),
        ({"response_retention_days": 0}, "response_retention_days"),
        ({"response_retention_days": 3651}, "response_retention_days"),
        ({"retention": 30}, "retention"),
    ],
)
def test_settings_are_validated_field_by_field(settings, field):
    with pytest.raises(ValidationError) as exc:
        workspaces.WorkspaceUpdate.model_validate({"settings": settings})
    assert exc.value.errors()[0]["loc"][:2] == ("settings", field)


async def test_settings_patch_merge_reset_and_refresh_routing(plane):
    owner = await make_user(plane)
    seen: list[str] = []
    plane.changes.subscribe(WORKSPACE, seen.append)
    created = await workspaces.create_workspace(
        plane,
        person(owner),
        workspaces.WorkspaceCreate(name="Team", settings={"log_retention_days": 7}),
    )
    ws = created["id"]
    assert created["role"] == "owner"
    assert created["settings"] == settings_with(log_retention_days=7)
    update_ = workspaces.WorkspaceUpdate.model_validate(
        {"settings": {"default_strategy": "cheapest", "log_request_bodies": True}}
    )
    after = await workspaces.update_workspace(plane, person(owner), ws, update_)
    assert after["settings"] == settings_with(
        default_strategy="cheapest", log_retention_days=7, log_request_bodies=True
    )
    async with plane.db.connect() as conn:
        row = await workspaces.get_row(conn, ws)
    assert row.settings == {
        "default_strategy": "cheapest",
        "log_retention_days": 7,
        "log_request_bodies": True,
    }
    assert row.routing_version == 1 and seen == [ws]
    reset = workspaces.WorkspaceUpdate.model_validate({"settings": {"log_retention_days": None}})
    after = await workspaces.update_workspace(plane, person(owner), ws, reset)
    assert after["settings"]["log_retention_days"] == 30  # back to the default
    rename = workspaces.WorkspaceUpdate(name="Renamed")
    assert (await workspaces.update_workspace(plane, person(owner), ws, rename))[
        "name"
    ] == "Renamed"
    async with plane.db.connect() as conn:
        row = await workspaces.get_row(conn, ws)
    assert row.routing_version == 2 and seen == [ws, ws]  # a rename leaves routing alone


async def test_people_see_their_workspaces_and_superadmins_see_all(plane):
    ann, bob = await make_user(plane), await make_user(plane)
    root = await make_user(plane, superadmin=True)
    mine = await make_workspace(plane, {ann: "viewer"})
    theirs = await make_workspace(plane, {bob: "owner"})

    async def listed(actor: Actor) -> dict[str, str]:
        page = await workspaces.list_workspaces(plane, actor, limit=50, cursor=None)
        return {r.id: workspaces.listed_view(actor, r)["role"] for r in page.rows}

    assert await listed(person(ann)) == {mine: "viewer"}
    assert await listed(person(bob)) == {theirs: "owner"}
    everything = await listed(Actor(kind="user", user_id=root, is_superadmin=True))
    assert {mine, theirs, "ws_default"} <= set(everything) and set(everything.values()) == {"owner"}
    with pytest.raises(GatewayError) as exc:
        await workspaces.get_workspace(plane, person(ann), theirs)
    assert exc.value.status == 404


async def test_paging_workspaces(plane):
    ann = await make_user(plane)
    made = [await make_workspace(plane, {ann: "member"}) for _ in range(5)]
    seen, cursor = [], None
    while True:
        page = await workspaces.list_workspaces(plane, person(ann), limit=2, cursor=cursor)
        seen += [r.id for r in page.rows]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(made) and len(seen) == 5


async def test_delete_takes_members_keys_and_invites_and_revokes_keys_at_once(plane):
    owner = await make_user(plane)
    ws = await make_workspace(plane, {owner: "owner"})
    key, _ = await api_keys.create_key(plane, person(owner), ws, api_keys.KeyCreate(name="k"))
    await invites.create_invite(
        plane, person(owner), ws, invites.InviteCreate(email="x@example.com")
    )
    dropped: list[str] = []
    plane.changes.subscribe(KEY, dropped.append)
    with pytest.raises(GatewayError) as exc:
        await workspaces.delete_workspace(plane, person(owner), "ws_default")
    assert exc.value.status == 404  # not a member of the default workspace
    root = Actor(kind="master", is_superadmin=True)
    with pytest.raises(GatewayError) as exc:
        await workspaces.delete_workspace(plane, root, "ws_default")
    assert exc.value.status == 409 and "default workspace" in exc.value.message
    await workspaces.delete_workspace(plane, person(owner), ws)
    assert dropped == [key["id"]]
    async with plane.db.connect() as conn:
        for table in (workspaces_table, memberships, api_keys_table, invites_table):
            count = await conn.scalar(
                select(func.count())
                .select_from(table)
                .where((table.c.id if table is workspaces_table else table.c.workspace_id) == ws)
            )
            assert count == 0, table.name


async def test_expired_invite_is_refused_and_not_pending(plane):
    owner, guest = await make_user(plane), await make_user(plane, "gus@example.com")
    ws = await make_workspace(plane, {owner: "owner"})
    view, token = await invites.create_invite(
        plane, person(owner), ws, invites.InviteCreate(email="gus@example.com", role="viewer")
    )
    assert view["status"] == "pending"
    async with plane.db.begin() as conn:
        await conn.execute(
            update(invites_table).values(
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            )
        )
    with pytest.raises(GatewayError) as exc:
        await invites.accept_invite(plane, person(guest), invites.InviteAccept(token=token))
    assert (exc.value.status, exc.value.code) == (410, "invite_expired")
    # An expired invite does not block a new one to the same address.
    _, again = await invites.create_invite(
        plane, person(owner), ws, invites.InviteCreate(email="gus@example.com", role="viewer")
    )
    joined = await invites.accept_invite(plane, person(guest), invites.InviteAccept(token=again))
    assert joined["role"] == "viewer"
    page = await members.list_members(plane, person(guest), ws, limit=10, cursor=None)
    assert {r.id: r.role for r in page.rows} == {owner: "owner", guest: "viewer"}
