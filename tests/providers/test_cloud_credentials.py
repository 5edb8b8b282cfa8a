"""Short-lived cloud credentials: where AWS and Google credentials are found, how tokens are
fetched (against the mocks' credential endpoints), cached, shared and renewed before they
expire, and that a tenant's provider never reaches the gateway's own."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest

from perpetuo.providers import credentials as cache
from perpetuo.providers.bedrock.aws_credentials import (
    RemoteAwsCredentials,
    StaticAwsCredentials,
    resolve,
)
from perpetuo.providers.vertex import google_auth
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.egress import EgressPolicy
from tests.mocks import bedrock_mock, vertex_mock
from tests.mocks.bedrock_mock import BedrockMock
from tests.mocks.vertex_mock import VertexMock

K = UpstreamErrorKind


@pytest.fixture(scope="module")
def aws() -> Iterator[BedrockMock]:
    mock = BedrockMock().start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def google() -> Iterator[VertexMock]:
    mock = VertexMock().start()
    yield mock
    mock.stop()


@pytest.fixture
async def client():
    http = HTTPClient()
    yield http
    await http.aclose()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache._cache.clear()


# --- AWS ---------------------------------------------------------------------------------------


def test_keys_in_config_then_profile_then_the_chain(tmp_path: Path):
    static, problem = resolve(
        key_id="AKID", secret="s", token="t", profile=None, chain=False, env={}
    )
    assert isinstance(static, StaticAwsCredentials) and problem is None
    assert static.current().token == "t"
    files = tmp_path / "credentials"
    files.write_text("[default]\naws_access_key_id = AKDEF\naws_secret_access_key = sdef\n")
    (tmp_path / "config").write_text(
        "[profile team]\naws_access_key_id = AKTEAM\naws_secret_access_key = steam\n"
        "aws_session_token = tteam\n"
    )
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(files), "AWS_CONFIG_FILE": str(tmp_path / "config")}
    team, _ = resolve(key_id=None, secret=None, token=None, profile="team", chain=False, env=env)
    assert team.current().access_key == "AKTEAM" and team.current().token == "tteam"
    none, problem = resolve(
        key_id=None, secret=None, token=None, profile=None, chain=False, env=env
    )
    assert none is None and "credential_chain" in problem
    # The chain: the environment first, then the shared files' default profile.
    chained, _ = resolve(
        key_id=None,
        secret=None,
        token=None,
        profile=None,
        chain=True,
        env={**env, "AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "senv"},
    )
    assert chained.current().access_key == "AKENV"
    chained, _ = resolve(key_id=None, secret=None, token=None, profile=None, chain=True, env=env)
    assert chained.current().access_key == "AKDEF"
    missing, problem = resolve(
        key_id=None, secret=None, token=None, profile="nope", chain=False, env=env
    )
    assert missing is None and "nope" in problem


async def test_container_credentials_are_fetched_once_and_shared(aws, client):
    aws.reset()
    env = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{aws.url}/container-credentials",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": bedrock_mock.CONTAINER_TOKEN,
        "HOME": "/nonexistent",
    }
    first, _ = resolve(key_id=None, secret=None, token=None, profile=None, chain=True, env=env)
    second, _ = resolve(key_id=None, secret=None, token=None, profile=None, chain=True, env=env)
    assert isinstance(first, RemoteAwsCredentials)
    with pytest.raises(UpstreamError) as exc:
        first.current()  # nothing fetched yet: the router readies it before building a call
    assert exc.value.kind is K.NOT_CONFIGURED
    await asyncio.gather(*(source.ready(client) for source in (first, second) * 5))
    assert aws.credential_fetches == 1  # ten waiters, one fetch
    creds = second.current()
    assert creds.access_key == bedrock_mock.TEMP_ACCESS_KEY
    assert creds.token == bedrock_mock.SESSION_TOKEN


async def test_instance_role_through_imdsv2(aws, client):
    aws.reset()
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": aws.url, "HOME": "/nonexistent"}
    source, _ = resolve(key_id=None, secret=None, token=None, profile=None, chain=True, env=env)
    await source.ready(client)
    assert source.current().secret_key == bedrock_mock.TEMP_SECRET_KEY
    disabled, problem = resolve(
        key_id=None,
        secret=None,
        token=None,
        profile=None,
        chain=True,
        env={**env, "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert disabled is None and "instance roles" in problem


async def test_refused_container_credentials_are_an_auth_failure(aws, client):
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{aws.url}/container-credentials"}
    source = RemoteAwsCredentials(env)
    with pytest.raises(UpstreamError) as exc:
        await source.ready(client)
    assert exc.value.kind is K.AUTH
    assert "HTTP 401" in exc.value.message


# --- Google ------------------------------------------------------------------------------------


def key_info(google: VertexMock, **changes) -> dict:
    return vertex_mock.service_account(f"{google.url}/token", **changes)


async def test_service_account_assertion_and_token(google, client):
    google.reset()
    source = google_auth.ServiceAccountToken(key_info(google))
    claims = jwt.decode(
        source.assertion(1_700_000_000),
        vertex_mock.PUBLIC_KEY,
        algorithms=["RS256"],
        audience="https://oauth2.googleapis.com/token",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": vertex_mock.CLIENT_EMAIL,
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": 1_700_000_000,
        "exp": 1_700_003_600,
    }
    await source.ready(client)
    assert source.current() in google.tokens
    assert google.token_requests == 1


async def test_token_renewed_ahead_of_expiry_and_kept_when_renewal_fails(
    google, client, monkeypatch
):
    google.reset()
    source = google_auth.ServiceAccountToken(key_info(google))
    # The cache's clock moves; tokens are dated by the real one (the endpoint checks the
    # assertions' times), which stays within a second of `start` here.
    start = time.time()
    now = [start]
    monkeypatch.setattr(cache, "time", SimpleNamespace(time=lambda: now[0]))
    await source.ready(client)
    first = source.current()
    now[0] = start + 3600 - 310  # 310 s left: still fresh
    await source.ready(client)
    assert google.token_requests == 1
    now[0] = start + 3600 - 290  # 290 s left: renewed now, before it expires
    await source.ready(client)
    assert google.token_requests == 2 and source.current() != first
    second = source.current()  # it expires an hour after `start` too (the real clock)
    # The token endpoint refuses while the current token is still valid: it stays in use.
    google.refuse_tokens = True
    await source.ready(client)
    assert source.current() == second and google.token_requests == 3
    now[0] = start + 3602  # expired: now the refusal fails the request
    with pytest.raises(UpstreamError) as exc:
        await source.ready(client)
    assert exc.value.kind is K.AUTH
    assert "invalid_grant" in exc.value.message
    refused = "the Google OAuth token endpoint refused the gateway's credentials (HTTP 400)"
    assert exc.value.cause == refused


async def test_a_waiter_that_goes_away_does_not_cancel_the_fetch(google, client):
    google.reset()
    google.token_delay = 0.3
    source = google_auth.ServiceAccountToken(key_info(google))
    leaving = asyncio.create_task(source.ready(client))
    staying = asyncio.create_task(source.ready(client))
    await asyncio.sleep(0.1)  # both wait on the one exchange
    leaving.cancel()
    await staying
    assert leaving.cancelled()
    assert source.current() in google.tokens and google.token_requests == 1


async def test_gcloud_user_credentials_and_the_metadata_server(google, client, tmp_path):
    google.reset()
    user = {
        "type": "authorized_user",
        "client_id": "cid",
        "client_secret": "csecret",
        "refresh_token": vertex_mock.REFRESH_TOKEN,
        "token_uri": f"{google.url}/token",
    }
    (tmp_path / "adc.json").write_text(json.dumps(user))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "adc.json")}
    source, _, problem = google_auth.resolve(
        access_token=None,
        key_json=None,
        key_file=None,
        api_key=None,
        chain=True,
        egress=None,
        env=env,
    )
    await source.ready(client)
    assert source.current() in google.tokens and problem is None
    host = google.url.removeprefix("http://")
    source, _, _ = google_auth.resolve(
        access_token=None,
        key_json=None,
        key_file=None,
        api_key=None,
        chain=True,
        egress=None,
        env={"GCE_METADATA_HOST": host, "HOME": str(tmp_path)},
    )
    assert isinstance(source, google_auth.MetadataServerToken)
    await source.ready(client)
    assert source.current() in google.tokens


def test_google_sources_and_what_a_tenant_may_use(google, tmp_path):
    static, _, _ = google_auth.resolve(
        access_token="ya29.given",
        key_json=None,
        key_file=None,
        api_key=None,
        chain=False,
        egress=None,
    )
    assert static.current() == "ya29.given"
    none, _, problem = google_auth.resolve(
        access_token=None, key_json=None, key_file=None, api_key=None, chain=False, egress=None
    )
    assert none is None and "credential_chain" in problem
    tenant = EgressPolicy()
    key = json.dumps(key_info(google))
    source, info, _ = google_auth.resolve(
        access_token=None, key_json=None, key_file=None, api_key=key, chain=False, egress=tenant
    )
    assert isinstance(source, google_auth.ServiceAccountToken) and source.egress is tenant
    assert info["project_id"] == vertex_mock.PROJECT
    user = json.dumps({"type": "authorized_user", "refresh_token": "r"})
    with pytest.raises(ValueError, match="service_account key is needed"):
        google_auth.resolve(
            access_token=None,
            key_json=None,
            key_file=None,
            api_key=user,
            chain=False,
            egress=tenant,
        )
    with pytest.raises(ValueError, match="not a PEM RSA key"):
        google_auth.ServiceAccountToken(key_info(google, private_key="-----BEGIN nothing"))
