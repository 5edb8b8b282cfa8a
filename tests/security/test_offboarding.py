"""Offboarding: keys owned by a disabled account, or by someone removed from the workspace,
stop working on every instance within seconds (403 `key_owner_disabled`), and come back when
the person is re-enabled or re-invited. Service keys belong to the workspace and keep working."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from tests.support.gateway import MASTER_KEY, GatewayProcess

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
PASSWORD = "correct horse battery 9"
_databases = itertools.count()
BOUND = 5.0  # seconds: the key-cache invalidation bound across instances


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def models(gateway: GatewayProcess, key: str) -> httpx.Response:
    return httpx.get(f"{gateway.url}/v1/models", headers=bearer(key), timeout=10)


def within_bound(gateway: GatewayProcess, key: str, status: int) -> httpx.Response:
    """Poll until the key answers `status`; fails if that takes longer than the bound."""
    started = time.monotonic()
    while True:
        reply = models(gateway, key)
        if reply.status_code == status:
            return reply
        assert time.monotonic() - started < BOUND, (reply.status_code, reply.text)
        time.sleep(0.1)


def join(gateway: GatewayProcess, email: str, role: str) -> tuple[str, str]:
    """An account invited into ws_default with `role`: (user id, access token)."""
    invite = httpx.post(
        f"{gateway.url}/api/workspaces/ws_default/invites",
        headers=MASTER,
        json={"email": email, "role": role},
    )
    assert invite.status_code == 201, invite.text
    signed = httpx.post(
        f"{gateway.url}/api/auth/signup",
        json={"email": email, "password": PASSWORD, "invite_token": invite.json()["data"]["token"]},
        timeout=30,
    )
    assert signed.status_code == 201, signed.text
    data = signed.json()["data"]
    return data["user"]["id"], data["access_token"]


def new_key(gateway: GatewayProcess, token: str, **extra) -> tuple[str, str]:
    created = httpx.post(
        f"{gateway.url}/api/workspaces/ws_default/keys",
        headers=bearer(token),
        json={"name": "k", **extra},
    )
    assert created.status_code == 201, created.text
    return created.json()["data"]["id"], created.json()["data"]["key"]


def listed_status(gateway: GatewayProcess, key_id: str) -> tuple[str, str | None]:
    keys = httpx.get(f"{gateway.url}/api/workspaces/ws_default/keys", headers=MASTER).json()
    key = next(k for k in keys["data"] if k["id"] == key_id)
    return key["status"], key["owner_status"]


@pytest.fixture(params=["redis", "db-polling"])
def two_instances(request, postgres, redis_server, tmp_path):
    shared = {
        "PERPETUO_DATABASE_URL": postgres.create_database(f"offboard_{next(_databases)}"),
        "PERPETUO_SECRET_KEY": "s" * 40,
    }
    if request.param == "redis":
        shared["PERPETUO_REDIS_URL"] = redis_server.url
    config = {"models": {}}
    a = GatewayProcess(config, tmp_path / "a", env=shared).start()
    b = GatewayProcess(config, tmp_path / "b", env=shared).start()
    try:
        httpx.post(
            f"{a.url}/api/auth/signup",
            json={"email": "root@example.com", "password": PASSWORD},
            timeout=30,
        ).raise_for_status()  # the platform's first account, out of the way
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_disabling_the_owner_stops_their_keys_everywhere(two_instances):
    a, b = two_instances
    ann, ann_token = join(a, "ann@example.com", "admin")
    key_id, key = new_key(a, ann_token)
    _, service_key = new_key(a, ann_token, service=True)
    assert models(b, key).status_code == 200  # cached on b from now on
    assert models(b, service_key).status_code == 200

    assert httpx.post(f"{a.url}/api/admin/users/{ann}/disable", headers=MASTER).status_code == 200
    refused = within_bound(b, key, 403)
    error = refused.json()["error"]
    assert error["code"] == "key_owner_disabled"
    assert "owner has been disabled" in error["message"]
    assert models(a, key).status_code == 403
    assert models(b, service_key).status_code == 200  # belongs to the workspace
    assert listed_status(a, key_id) == ("owner_disabled", "disabled")

    assert httpx.post(f"{a.url}/api/admin/users/{ann}/enable", headers=MASTER).status_code == 200
    within_bound(b, key, 200)
    assert listed_status(a, key_id) == ("active", "active")


def test_removing_the_owner_from_the_workspace_stops_their_keys(two_instances):
    a, b = two_instances
    bob, bob_token = join(a, "bob@example.com", "member")
    key_id, key = new_key(a, bob_token)
    assert models(b, key).status_code == 200

    removed = httpx.delete(f"{a.url}/api/workspaces/ws_default/members/{bob}", headers=MASTER)
    assert removed.status_code == 204, removed.text
    refused = within_bound(b, key, 403)
    assert refused.json()["error"]["code"] == "key_owner_disabled"
    assert "no longer a member" in refused.json()["error"]["message"]
    assert listed_status(a, key_id) == ("owner_removed", "removed")


def test_only_admins_make_service_keys(two_instances):
    a, _ = two_instances
    _, member_token = join(a, "cy@example.com", "member")
    refused = httpx.post(
        f"{a.url}/api/workspaces/ws_default/keys",
        headers=bearer(member_token),
        json={"name": "svc", "service": True},
    )
    assert refused.status_code == 403
