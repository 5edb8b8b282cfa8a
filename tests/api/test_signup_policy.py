"""Who may create an account: the first person always (and they administer the platform);
after that anyone (open), invitees only (invite, the default), or nobody (closed)."""

from __future__ import annotations

import pytest

from tests.support.admin_api import MASTER, admin_api, bearer

GOOD = "correct horse battery 9"


async def signup(api, email, **extra):
    return await api.http.post("/api/auth/signup", json={"email": email, "password": GOOD, **extra})


@pytest.fixture
async def invite_only(tmp_path):
    async with admin_api(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, signup="invite"
    ) as api:
        yield api


async def test_first_account_is_allowed_and_administers_the_platform(invite_only):
    first = await signup(invite_only, "root@example.com")
    assert first.status_code == 201, first.text
    assert first.json()["data"]["user"]["is_superadmin"] is True
    second = await signup(invite_only, "stranger@example.com")
    assert second.status_code == 403
    assert "invitation" in second.json()["error"]["message"]


async def test_invitation_lets_its_addressee_sign_up_and_join(invite_only):
    await signup(invite_only, "root@example.com")
    created = await invite_only.http.post(
        "/api/workspaces/ws_default/invites",
        headers=MASTER,
        json={"email": "Ann@Example.com", "role": "member"},
    )
    assert created.status_code == 201, created.text
    token = created.json()["data"]["token"]
    wrong = await signup(invite_only, "bob@example.com", invite_token=token)
    assert wrong.status_code == 403
    ann = await signup(invite_only, "ann@example.com", invite_token=token)
    assert ann.status_code == 201, ann.text
    access = ann.json()["data"]["access_token"]
    assert ann.json()["data"]["user"]["is_superadmin"] is False
    me = await invite_only.http.get("/api/auth/me", headers=bearer(access))
    roles = {m["workspace_id"]: m["role"] for m in me.json()["data"]["memberships"]}
    assert roles == {"ws_default": "member"}
    again = await signup(invite_only, "ann2@example.com", invite_token=token)
    assert again.status_code == 403  # used


async def test_closed_signup(tmp_path):
    async with admin_api(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, signup="closed"
    ) as api:
        assert (await signup(api, "root@example.com")).status_code == 201
        refused = await signup(api, "late@example.com")
        assert refused.status_code == 403 and "closed" in refused.json()["error"]["message"]


async def test_a_bad_invitation_creates_no_account_even_with_open_signup(tmp_path):
    async with admin_api(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, signup="open"
    ) as api:
        await signup(api, "root@example.com")
        refused = await signup(api, "eve@example.com", invite_token="not-a-real-invitation")
        assert refused.status_code == 403
        # Nothing was made: the address is still free for a sign-up without the bad token.
        retried = await signup(api, "eve@example.com")
        assert retried.status_code == 201, retried.text
