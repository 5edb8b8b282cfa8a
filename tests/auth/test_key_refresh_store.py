"""The key cache's batched refresh against a real database: one query answers current and
previous (rotated) hashes with the key's standing, and a revoked key comes back revoked."""

from __future__ import annotations

import pytest

from perpetuo.app import key_batch_loader, key_loader
from perpetuo.auth.api_keys import key_hash
from perpetuo.control import api_keys
from perpetuo.control.actor import Actor
from tests.support.people import make_user, make_workspace
from tests.support.plane import make_plane


@pytest.fixture
async def plane(store_url):
    plane = await make_plane(store_url)
    yield plane
    await plane.db.dispose()


async def test_one_query_reads_current_previous_and_revoked_keys(plane):
    owner = await make_user(plane)
    workspace = await make_workspace(plane, {owner: "owner"})
    actor = Actor(kind="user", user_id=owner)
    hmac = plane.keys.api_key_hmac
    made = [
        await api_keys.create_key(plane, actor, workspace, api_keys.KeyCreate(name=f"k{i}"))
        for i in range(3)
    ]
    (rotated, old_plain), (revoked, revoked_plain), (plain_view, plain) = made
    _, new_plain = await api_keys.rotate_key(plane, actor, workspace, rotated["id"], 3600)
    await api_keys.revoke_key(plane, actor, workspace, revoked["id"])
    hashes = {
        "old": key_hash(hmac, old_plain),
        "new": key_hash(hmac, new_plain),
        "revoked": key_hash(hmac, revoked_plain),
        "plain": key_hash(hmac, plain),
        "unknown": key_hash(hmac, "pk_live_" + "x" * 40),
    }
    found = await key_batch_loader(plane.db)(list(hashes.values()))
    assert set(found) == {hashes[n] for n in ("old", "new", "revoked", "plain")}
    assert found[hashes["old"]].valid_until is not None  # the rotated-away secret's grace
    assert found[hashes["new"]].valid_until is None
    assert found[hashes["revoked"]].revoked and not found[hashes["plain"]].revoked
    assert found[hashes["plain"]].key_id == plain_view["id"]
    assert found[hashes["plain"]].owner == "active"
    # The same records as the one-key read the request path falls back on.
    single = key_loader(plane.db)
    for name in ("old", "new", "revoked", "plain"):
        assert await single(hashes[name]) == found[hashes[name]]
