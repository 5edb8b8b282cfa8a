"""Custom roles in the dashboard: offered on the members page, given from it, and a member
holding one sees the workspace's pages at the built-in level its permissions cover while each
action stays checked permission by permission."""

from __future__ import annotations

import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.control import roles
from perpetuo.control.actor import Actor
from perpetuo.control.permissions import BUILT_IN
from tests.ui.world import World, world


@pytest.fixture
async def w(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with world(tmp_path) as made:
        yield made


async def test_a_custom_role_is_given_from_the_members_page_and_works(w: World):
    a = w.a
    owner, member = a.people["owner"], a.people["member"]
    await roles.create_role(
        w.api.plane,
        Actor(kind="user", user_id=owner.user_id),
        a.workspace_id,
        roles.RoleCreate(name="auditor", permissions=sorted(BUILT_IN["viewer"] | {"audit.read"})),
    )
    base = f"/ui/w/{a.workspace_id}"
    page = (await owner.get(f"{base}/members")).text
    assert '<option value="auditor">auditor (custom)</option>' in page
    given = await owner.post(f"{base}/members/{member.user_id}/role", {"role": "auditor"})
    assert given.status_code == 303, given.text[:500]
    assert '<option value="auditor" selected>' in (await owner.get(f"{base}/members")).text

    # The holder browses as a viewer would; the audit log's API answers, key creation not.
    assert (await member.get(base)).status_code == 200
    assert (await member.get(f"{base}/usage")).status_code == 200
    made = await member.post(f"{base}/keys", {"name": "nope", "scopes": "chat"})
    assert made.status_code == 403
    audit = await w.api.http.get(
        f"/api/workspaces/{a.workspace_id}/audit",
        headers={"authorization": f"Bearer {member.access_token}"},
    )
    assert audit.status_code == 200
