"""Virtual API keys end to end: created through the admin API or the CLI, used through the
openai SDK, restricted, rotated with a grace period, revoked — on one instance and across two
instances sharing PostgreSQL (with and without Redis)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

import httpx
import openai
import pytest

from tests.conftest import full_config
from tests.support.gateway import MASTER_KEY, GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    config, env = full_config(mocks)
    process = GatewayProcess(config, tmp_path_factory.mktemp("keys"), env=env).start()
    yield process
    process.stop()


def create_key(gateway: GatewayProcess, **fields) -> dict:
    response = httpx.post(
        f"{gateway.url}/api/workspaces/ws_default/keys",
        headers=ADMIN,
        json={"name": "test", **fields},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def sdk(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def eventually(check, timeout: float, interval: float = 0.05) -> float:
    """Seconds until `check()` stops raising; fails after `timeout`."""
    started = time.monotonic()
    while True:
        try:
            check()
            return time.monotonic() - started
        except (AssertionError, pytest.fail.Exception):
            if time.monotonic() - started > timeout:
                raise
            time.sleep(interval)


def test_key_is_shown_once_and_never_again(gw):
    created = create_key(gw)
    assert created["key"].startswith("pk_live_") and len(created["key"]) >= 48
    assert created["display"].startswith(created["prefix"]) and created["key"].endswith(
        created["last4"]
    )
    listed = httpx.get(f"{gw.url}/api/workspaces/ws_default/keys", headers=ADMIN).json()
    assert created["key"] not in json.dumps(listed)
    fetched = httpx.get(
        f"{gw.url}/api/workspaces/ws_default/keys/{created['id']}", headers=ADMIN
    ).json()
    assert "key" not in fetched["data"] and fetched["data"]["status"] == "active"


def test_lifecycle_create_use_rotate_grace_revoke(gw):
    created = create_key(gw, name="lifecycle")
    reply = sdk(gw, created["key"]).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert reply.choices[0].message.content == "Echo: hello"

    rotated = httpx.post(
        f"{gw.url}/api/workspaces/ws_default/keys/{created['id']}/rotate",
        headers=ADMIN,
        json={"grace_seconds": 2},
    ).json()["data"]
    assert rotated["key"] != created["key"] and rotated["id"] == created["id"]
    for key in (created["key"], rotated["key"]):  # both work during the grace period
        sdk(gw, key).chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    def old_rejected():
        with pytest.raises(openai.AuthenticationError) as exc:
            sdk(gw, created["key"]).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert exc.value.code == "api_key_rotated"

    assert eventually(old_rejected, timeout=5) < 4
    sdk(gw, rotated["key"]).chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    revoked = httpx.post(
        f"{gw.url}/api/workspaces/ws_default/keys/{created['id']}/revoke", headers=ADMIN
    )
    assert revoked.json()["data"]["status"] == "revoked"

    def new_rejected():
        with pytest.raises(openai.AuthenticationError) as exc:
            sdk(gw, rotated["key"]).models.list()
        assert exc.value.code == "api_key_revoked"

    assert eventually(new_rejected, timeout=1) < 1  # same instance: at once


def test_restrictions_give_distinct_errors(gw):
    narrow = create_key(gw, allowed_models=["gpt-4o-mini"], scopes=["chat"])
    client = sdk(gw, narrow["key"])
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client.chat.completions.create(model="azure-gpt", messages=HELLO)
    assert exc.value.code == "model_not_allowed"
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert exc.value.code == "insufficient_scope"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-alias", messages=HELLO)

    far = create_key(gw, ip_allowlist=["10.0.0.0/8"])
    with pytest.raises(openai.PermissionDeniedError) as exc:
        sdk(gw, far["key"]).models.list()
    assert exc.value.code == "ip_not_allowed"
    near = create_key(gw, ip_allowlist=["127.0.0.0/8"])
    assert sdk(gw, near["key"]).models.list().data

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
    expiring = create_key(gw, expires_at=soon)
    sdk(gw, expiring["key"]).models.list()

    def expired():
        with pytest.raises(openai.AuthenticationError) as exc:
            sdk(gw, expiring["key"]).models.list()
        assert exc.value.code == "api_key_expired"

    eventually(expired, timeout=3)


def test_models_list_shows_only_allowed_aliases(gw):
    narrow = create_key(gw, allowed_models=["gpt-4o-mini", "claude"])
    ids = {m.id for m in sdk(gw, narrow["key"]).models.list()}
    assert ids == {"gpt-4o-mini", "claude"}


def test_admin_validation_names_the_field(gw):
    url = f"{gw.url}/api/workspaces/ws_default/keys"
    cases = [
        ({"name": ""}, "name"),
        ({"name": "x", "ip_allowlist": ["not-an-ip"]}, "ip_allowlist"),
        ({"name": "x", "scopes": ["everything"]}, "scopes.0"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "limits": {"rpm": -1}}, "limits.rpm"),
        ({"name": "x", "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = httpx.post(url, headers=ADMIN, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["param"] == field
    assert httpx.post(url, headers=ADMIN, content=b"{bad").status_code == 422
    assert httpx.post(url, json={"name": "x"}).status_code == 401
    assert (
        httpx.get(
            f"{gw.url}/api/workspaces/ws_nope/keys", headers={"authorization": "Bearer x"}
        ).status_code
        == 401
    )


def test_cli_create_list_revoke_against_the_same_database(gw):
    env = {
        **os.environ,
        "PERPETUO_DATA_DIR": str(gw.workdir / "data"),
        "PERPETUO_MASTER_KEY": MASTER_KEY,
    }

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "perpetuo", *args, "--config", str(gw.config_path)],
            capture_output=True,
            text=True,
            env=env | gw.env,
            timeout=60,
        )

    created = run(
        "keys",
        "create",
        "--name",
        "from-cli",
        "--models",
        "gpt-4o-mini",
        "--expires",
        "30d",
        "--rpm",
        "100",
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("pk_live_")
    reply = sdk(gw, key).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert reply.choices[0].message.content == "Echo: hello"
    listed = json.loads(run("keys", "list", "--json").stdout)
    mine = next(k for k in listed if k["name"] == "from-cli")
    assert mine["limits"] == {"rpm": 100} and mine["allowed_models"] == ["gpt-4o-mini"]
    assert key not in json.dumps(listed)
    revoked = run("keys", "revoke", mine["prefix"])
    assert revoked.returncode == 0, revoked.stderr

    def rejected():
        with pytest.raises(openai.AuthenticationError):
            sdk(gw, key).models.list()

    # A revocation from another process reaches the running gateway through the database.
    assert eventually(rejected, timeout=5) < 5


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "db-polling"])
def test_revocation_reaches_other_instances_within_5s(
    mocks, postgres, redis_server, tmp_path, with_redis
):
    config, env = full_config(mocks)
    database = postgres.create_database(f"multi_{'redis' if with_redis else 'poll'}")
    shared = {**env, "PERPETUO_DATABASE_URL": database, "PERPETUO_SECRET_KEY": "s" * 40}
    if with_redis:
        shared["PERPETUO_REDIS_URL"] = redis_server.url
    a = GatewayProcess(config, tmp_path / "a", env=shared).start()
    b = GatewayProcess(config, tmp_path / "b", env=shared).start()
    try:
        created = create_key(a, name="shared")
        assert sdk(b, created["key"]).models.list().data  # created on A, works on B
        httpx.post(f"{a.url}/api/workspaces/ws_default/keys/{created['id']}/revoke", headers=ADMIN)

        def rejected_on_b():
            with pytest.raises(openai.AuthenticationError):
                sdk(b, created["key"]).models.list()

        elapsed = eventually(rejected_on_b, timeout=5)
        assert elapsed < (1 if with_redis else 5)
    finally:
        a.stop()
        b.stop()
