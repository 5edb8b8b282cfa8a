"""Custom roles at the service level: a member holding one can do exactly what its
permissions allow, nobody makes or grants a role stronger than their own, renames follow the
role to its members, a held role cannot be deleted, and every change is audited. Built-in
roles keep the permissions their rank always gave."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from perpetuo.control import api_keys, audit_query, members, roles
from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.permissions import BUILT_IN, PERMISSIONS
from perpetuo.schema.errors import GatewayError
from perpetuo.store.schema import audit_log, memberships
from perpetuo.store.timeutil import utcnow
from tests.support.people import make_user, make_workspace
from tests.support.plane import make_plane


@pytest.fixture
async def plane(store_url):
    plane = await make_plane(store_url)
    yield plane
    await plane.db.dispose()


def person(user_id: str) -> Actor:
    return Actor(kind="user", user_id=user_id)


async def team(plane):
    """A workspace with an owner, an admin and a member; returns (workspace, people)."""
    people = {name: await make_user(plane) for name in ("owner", "admin", "member", "other")}
    workspace = await make_workspace(
        plane,
        {people["owner"]: "owner", people["admin"]: "admin", people["member"]: "member"},
    )
    return workspace, people


async def give(plane, workspace, by, user_id, role_name):
    return await members.change_role(
        plane, person(by), workspace, user_id, members.RoleChange(role=role_name)
    )


async def refused(status: int, call) -> GatewayError:
    with pytest.raises(GatewayError) as exc:
        await call
    assert exc.value.status == status, exc.value.message
    return exc.value


def test_built_in_roles_keep_what_their_rank_gave():
    for role in Role:
        for permission, (least, _) in PERMISSIONS.items():
            assert (permission in BUILT_IN[role.label]) == (least <= role)
    assert BUILT_IN["viewer"] < BUILT_IN["member"] < BUILT_IN["admin"] < BUILT_IN["owner"]


async def test_a_custom_role_allows_exactly_its_permissions(plane):
    workspace, people = await team(plane)
    await roles.create_role(
        plane,
        person(people["admin"]),
        workspace,
        roles.RoleCreate(name="auditor", permissions=["workspace.read", "audit.read"]),
    )
    await give(plane, workspace, people["admin"], people["member"], "auditor")
    auditor = person(people["member"])

    # Granted: the audit log (which a member never had) and the member list.
    await audit_query.workspace_audit(
        plane, auditor, workspace, audit_query.AuditFilters(), limit=10, cursor=None
    )
    await members.list_members(plane, auditor, workspace, limit=10, cursor=None)
    # Not granted: reading keys (a viewer's right) and creating them (a member's), 403.
    await refused(403, api_keys.list_keys(plane, auditor, workspace, limit=10, cursor=None))
    error = await refused(
        403, api_keys.create_key(plane, auditor, workspace, api_keys.KeyCreate(name="k"))
    )
    assert "keys.create" in error.message and "auditor" in error.message
    # A check still asking for a built-in role sees a role short of a viewer's permissions
    # as below every built-in role.
    async with plane.db.connect() as conn:
        with pytest.raises(GatewayError) as exc:
            await require_role(conn, auditor, workspace, Role.VIEWER)
    assert exc.value.status == 403


async def test_a_key_maker_creates_its_own_keys_but_no_service_keys(plane):
    workspace, people = await team(plane)
    await roles.create_role(
        plane,
        person(people["owner"]),
        workspace,
        roles.RoleCreate(name="keymaker", permissions=["keys.read", "keys.create"]),
    )
    await give(plane, workspace, people["owner"], people["member"], "keymaker")
    maker = person(people["member"])
    view, plaintext = await api_keys.create_key(
        plane, maker, workspace, api_keys.KeyCreate(name="mine")
    )
    assert plaintext.startswith("pk_live_") and view["owner_id"] == people["member"]
    await refused(
        403,
        api_keys.create_key(plane, maker, workspace, api_keys.KeyCreate(name="s", service=True)),
    )
    others, _ = await api_keys.create_key(
        plane, person(people["admin"]), workspace, api_keys.KeyCreate(name="admin's")
    )
    await refused(403, api_keys.revoke_key(plane, maker, workspace, others["id"]))
    renamed = await api_keys.update_key(
        plane, maker, workspace, view["id"], api_keys.KeyUpdate(name="renamed")
    )
    assert renamed["name"] == "renamed"
    await refused(  # teams are for those who manage every key
        403,
        api_keys.update_key(plane, maker, workspace, view["id"], api_keys.KeyUpdate(team_id=None)),
    )
    await api_keys.revoke_key(plane, maker, workspace, view["id"])


async def test_a_role_holding_a_built_in_roles_permissions_passes_its_checks(plane):
    workspace, people = await team(plane)
    everything_a_member_has = sorted(BUILT_IN["member"] | {"audit.read"})
    await roles.create_role(
        plane,
        person(people["admin"]),
        workspace,
        roles.RoleCreate(name="lead", permissions=everything_a_member_has),
    )
    await give(plane, workspace, people["admin"], people["member"], "lead")
    async with plane.db.connect() as conn:
        assert await require_role(conn, person(people["member"]), workspace, Role.MEMBER) == (
            Role.MEMBER
        )
        with pytest.raises(GatewayError):
            await require_role(conn, person(people["member"]), workspace, Role.ADMIN)


async def test_nobody_makes_or_grants_a_role_stronger_than_their_own(plane):
    workspace, people = await team(plane)
    admin = person(people["admin"])
    await refused(  # an admin cannot make a role that deletes the workspace
        403,
        roles.create_role(
            plane,
            admin,
            workspace,
            roles.RoleCreate(name="wrecker", permissions=["workspace.delete"]),
        ),
    )
    await refused(  # a member manages no roles at all
        403,
        roles.create_role(
            plane,
            person(people["member"]),
            workspace,
            roles.RoleCreate(name="xx", permissions=["workspace.read"]),
        ),
    )
    await roles.create_role(
        plane,
        admin,
        workspace,
        roles.RoleCreate(
            name="recruiter", permissions=["workspace.read", "members.manage", "roles.manage"]
        ),
    )
    await give(plane, workspace, people["admin"], people["member"], "recruiter")
    recruiter = person(people["member"])
    viewer = await make_user(plane)
    async with plane.db.begin() as conn:
        await conn.execute(
            memberships.insert().values(
                workspace_id=workspace, user_id=viewer, role="viewer", created_at=utcnow()
            )
        )
    # Viewers can read keys and usage, which the recruiter cannot: so it cannot grant that.
    await refused(403, give(plane, workspace, people["member"], viewer, "member"))
    await refused(403, give(plane, workspace, people["member"], people["admin"], "viewer"))
    await refused(  # nor widen a role with permissions it lacks
        403,
        roles.create_role(
            plane,
            recruiter,
            workspace,
            roles.RoleCreate(name="reader", permissions=["usage.read"]),
        ),
    )


async def test_renames_follow_members_held_roles_stay_and_changes_are_audited(plane):
    workspace, people = await team(plane)
    owner = person(people["owner"])
    created = await roles.create_role(
        plane,
        owner,
        workspace,
        roles.RoleCreate(name="analyst", permissions=["workspace.read", "usage.read"]),
    )
    await give(plane, workspace, people["owner"], people["member"], "analyst")
    renamed = await roles.update_role(
        plane, owner, workspace, created["id"], roles.RoleUpdate(name="finance")
    )
    assert renamed["name"] == "finance" and renamed["members"] == 1
    listed = await members.list_members(plane, owner, workspace, limit=10, cursor=None)
    assert {r.role for r in listed.rows if r.id == people["member"]} == {"finance"}
    await refused(409, roles.delete_role(plane, owner, workspace, created["id"]))
    await give(plane, workspace, people["owner"], people["member"], "member")
    await roles.delete_role(plane, owner, workspace, created["id"])
    await refused(404, roles.get_role(plane, owner, workspace, created["id"]))
    async with plane.db.connect() as conn:
        actions = (
            await conn.execute(
                select(audit_log.c.action).where(audit_log.c.workspace_id == workspace)
            )
        ).scalars()
        actions = list(actions)
    for action in ("role.create", "role.update", "role.delete", "member.role_change"):
        assert action in actions


async def test_roles_belong_to_their_workspace(plane):
    workspace, people = await team(plane)
    elsewhere = await make_workspace(plane, {people["other"]: "owner"})
    await roles.create_role(
        plane,
        person(people["other"]),
        elsewhere,
        roles.RoleCreate(name="theirs", permissions=["workspace.read"]),
    )
    error = await refused(422, give(plane, workspace, people["owner"], people["member"], "theirs"))
    assert error.param == "role"
    assert await roles.list_roles(plane, person(people["owner"]), workspace) == []
    await refused(404, roles.list_roles(plane, person(people["owner"]), elsewhere))


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "admin", "permissions": []},
        {"name": "Bad Name", "permissions": []},
        {"name": "ok", "permissions": ["keys.destroy"]},
    ],
)
def test_role_fields_are_checked(fields):
    with pytest.raises(ValidationError):
        roles.RoleCreate.model_validate(fields)
