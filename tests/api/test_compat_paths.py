"""Paths and policies browser apps and other gateways' clients expect: /ping, the data plane
under /api/v1, /redoc, CORS (server-wide and per workspace, preflights answered before
authentication) and the per-address throttle on floods of invalid keys."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from perpetuo.api.asgi import GatewayApp
from perpetuo.app import cors_policy
from perpetuo.config import Settings
from tests.support.admin_api import MASTER, admin_api, bearer, error_of
from tests.support.people import make_user, make_workspace, sign_in

APP = "https://app.example.com"
PREFLIGHT = {
    "origin": APP,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


def _client(app: GatewayApp, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


@pytest.fixture
async def api(tmp_path):
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as api:
        yield api


async def _key(api, name: str) -> tuple[str, str, str]:
    """(workspace id, key, owner's access token) of a new tenant."""
    owner = await make_user(api.plane, f"{name}@example.com")
    workspace_id = await make_workspace(api.plane, {owner: "owner"})
    token = (await sign_in(api.plane, owner)).access_token
    created = await api.http.post(
        f"/api/workspaces/{workspace_id}/keys", headers=bearer(token), json={"name": name}
    )
    return workspace_id, created.json()["data"]["key"], token


async def test_ping_redoc_and_the_data_plane_under_api_v1(api):
    ping = await api.http.get("/ping")
    assert ping.status_code == 200
    redoc = await api.http.get("/redoc")
    assert redoc.status_code == 200 and "redoc" in redoc.text.lower()
    assert "/openapi.json" in redoc.text

    _, key, _ = await _key(api, "ann")
    models = await api.http.get("/api/v1/models", headers=bearer(key))
    assert models.status_code == 200 and models.json()["object"] == "list"
    refused = await api.http.post("/api/v1/chat/completions", json={"model": "m"})
    assert refused.status_code == 401  # the data plane's own answer, in OpenAI's shape
    assert error_of(refused)["code"] == "missing_api_key"
    assert refused.headers["x-request-id"]
    unknown = await api.http.get("/api/v1/nothing-here", headers=bearer(key))
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "not_found"
    # The admin API keeps the rest of /api/.
    admin = await api.http.get("/api/workspaces", headers=MASTER)
    assert admin.status_code == 200 and "data" in admin.json()
    assert (await api.http.get("/api/v1x", headers=MASTER)).status_code == 404


async def test_cors_for_server_wide_origins(api):
    settings = Settings(cors_origins=f"{APP}, https://other.example.com:8443")
    app = GatewayApp(api.app.gateway, cors=cors_policy(settings, api.app.gateway))
    _, key, _ = await _key(api, "bo")
    async with _client(app) as http:
        preflight = await http.options("/v1/chat/completions", headers=PREFLIGHT)
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == APP
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
        assert preflight.headers["access-control-max-age"] == "600"
        assert preflight.headers["vary"] == "Origin"
        assert "access-control-allow-credentials" not in preflight.headers

        stranger = await http.options(
            "/v1/chat/completions", headers={**PREFLIGHT, "origin": "https://evil.example"}
        )
        assert stranger.status_code == 403
        assert "access-control-allow-origin" not in stranger.headers
        assert error_of(stranger)["code"] == "origin_not_allowed"

        answer = await http.get("/v1/models", headers={**bearer(key), "origin": APP})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == APP
        assert "x-request-id" in answer.headers["access-control-expose-headers"]
        refusal = await http.get("/v1/models", headers={"origin": APP})  # readable errors too
        assert refusal.status_code == 401
        assert refusal.headers["access-control-allow-origin"] == APP
        plain = await http.get("/v1/models", headers=bearer(key))  # no Origin: no CORS
        assert "access-control-allow-origin" not in plain.headers
        evil = await http.get("/v1/models", headers={**bearer(key), "origin": "https://evil.x"})
        assert "access-control-allow-origin" not in evil.headers
    # Without a policy (the default app), a preflight is just a method the path does not take.
    assert (await api.http.options("/v1/models", headers=PREFLIGHT)).status_code == 405


async def test_any_origin_never_comes_with_credentials(api):
    with pytest.raises(ValidationError, match="CREDENTIALS"):
        Settings(cors_origins="*", cors_allow_credentials=True)
    wildcard = Settings(cors_origins="*")
    app = GatewayApp(api.app.gateway, cors=cors_policy(wildcard, api.app.gateway))
    async with _client(app) as http:
        preflight = await http.options("/v1/embeddings", headers=PREFLIGHT)
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in preflight.headers
    named = Settings(cors_origins=APP, cors_allow_credentials=True)
    app = GatewayApp(api.app.gateway, cors=cors_policy(named, api.app.gateway))
    async with _client(app) as http:
        preflight = await http.options("/v1/embeddings", headers=PREFLIGHT)
        assert preflight.headers["access-control-allow-origin"] == APP
        assert preflight.headers["access-control-allow-credentials"] == "true"


async def test_a_workspace_allows_its_own_origins_for_its_own_keys(api):
    app = GatewayApp(api.app.gateway, cors=cors_policy(Settings(), api.app.gateway))
    workspace_id, key, token = await _key(api, "cy")
    _, other_key, _ = await _key(api, "dee")
    async with _client(app) as http:
        before = await http.options("/v1/chat/completions", headers=PREFLIGHT)
        assert before.status_code == 403
        bad = await api.http.patch(
            f"/api/workspaces/{workspace_id}",
            headers=bearer(token),
            json={"settings": {"cors_origins": ["not an origin"]}},
        )
        assert bad.status_code == 422
        updated = await api.http.patch(
            f"/api/workspaces/{workspace_id}",
            headers=bearer(token),
            json={"settings": {"cors_origins": [APP + "/"]}},
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["data"]["settings"]["cors_origins"] == [APP]
        after = await http.options("/v1/chat/completions", headers=PREFLIGHT)
        assert after.status_code == 204
        assert after.headers["access-control-allow-origin"] == APP
        own = await http.get("/v1/models", headers={**bearer(key), "origin": APP})
        assert own.headers["access-control-allow-origin"] == APP
        foreign = await http.get("/v1/models", headers={**bearer(other_key), "origin": APP})
        assert foreign.status_code == 200
        assert "access-control-allow-origin" not in foreign.headers


async def test_an_address_sending_bad_keys_is_throttled_before_any_lookup(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, invalid_key_limit=3) as api:
        _, key, _ = await _key(api, "eve")
        lookups = []
        cache = api.app.gateway.keys
        original = cache.get

        async def counted(key_hash):
            lookups.append(key_hash)
            return await original(key_hash)

        cache.get = counted
        async with _client(api.app, "203.0.113.9") as flood, _client(api.app, "198.51.100.1") as ok:
            for token in (None, "pk_live_" + "a" * 43, "not-a-key"):
                headers = bearer(token) if token else {}
                answer = await flood.get("/v1/models", headers=headers)
                assert answer.status_code == 401
            lookups.clear()
            throttled = await flood.get("/v1/models", headers=bearer("pk_live_" + "b" * 43))
            assert throttled.status_code == 429
            assert error_of(throttled)["code"] == "too_many_invalid_keys"
            assert 1 <= int(throttled.headers["retry-after"]) <= 60
            valid_too = await flood.get("/v1/models", headers=bearer(key))
            assert valid_too.status_code == 429  # refused before the key is even looked at
            assert lookups == []
            elsewhere = await ok.get("/v1/models", headers=bearer(key))
            assert elsewhere.status_code == 200


async def test_the_bad_key_count_is_shared_through_redis(tmp_path, redis_server):
    from perpetuo.auth.key_throttle import InvalidKeyThrottle

    first = InvalidKeyThrottle(3, redis_server.url)
    second = InvalidKeyThrottle(3, redis_server.url)
    await first.failed("192.0.2.7")
    await first.failed("192.0.2.7")
    assert second.retry_after("192.0.2.7") == 0
    await second.failed("192.0.2.7")  # the third failure, counted by another instance
    assert second.retry_after("192.0.2.7") > 0
    assert first.retry_after("192.0.2.8") == 0
    await first.aclose()
    await second.aclose()
