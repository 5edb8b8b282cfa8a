"""Health probes and a tenant's "test connection" on Bedrock and Vertex AI: a free,
authenticated listing (ListFoundationModels, the project's models), signed or with a token
fetched first, never a 500 when the credentials fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.control.connection_test import test_connection as connection_test
from perpetuo.providers import credentials as cache
from perpetuo.providers import vertex as vertex_adapter
from perpetuo.providers.registry import ADAPTERS, build_target
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.egress import EgressPolicy
from tests.mocks import bedrock_mock, vertex_mock
from tests.mocks.bedrock_mock import BedrockMock
from tests.mocks.vertex_mock import VertexMock


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[BedrockMock, VertexMock]]:
    started = BedrockMock().start(), VertexMock().start()
    yield started
    for mock in started:
        mock.stop()


@pytest.fixture
async def client():
    http = HTTPClient()
    yield http
    await http.aclose()


async def probe(client: HTTPClient, provider: ProviderConfig, model: str) -> int:
    target = build_target("p", provider, DeploymentConfig(provider="p", model=model))
    if target.credentials is not None:
        await target.credentials.ready(client)
    call = ADAPTERS[provider.type].probe_request(target)
    response = await client.request(call.method, call.url, call.headers, call.body)
    await response.read()
    return response.status


async def test_bedrock_probe_is_a_signed_model_listing(cloud, client):
    bedrock, _ = cloud
    provider = ProviderConfig(
        type="bedrock",
        api_base=bedrock.url,
        region=bedrock_mock.REGION,
        aws_access_key_id=bedrock_mock.ACCESS_KEY,
        aws_secret_access_key=bedrock_mock.SECRET_KEY,
    )
    assert await probe(client, provider, bedrock_mock.NOVA) == 200
    assert bedrock.last.path == "/foundation-models"
    wrong = ProviderConfig.model_validate(
        {**provider.model_dump(exclude_none=True), "aws_secret_access_key": "nope"}
    )
    assert await probe(client, wrong, bedrock_mock.NOVA) == 403
    real = build_target(
        "p",
        ProviderConfig(type="bedrock", region="eu-west-1", api_key="k"),
        DeploymentConfig(provider="p", model="x"),
    )
    url = ADAPTERS["bedrock"].probe_request(real).url
    assert (
        str(url)
        == "https://bedrock.eu-west-1.amazonaws.com/foundation-models?byOutputModality=TEXT"
    )


async def test_vertex_probe_lists_the_projects_models_with_a_token(cloud, client):
    _, vertex = cloud
    key = json.dumps(vertex_mock.service_account(f"{vertex.url}/token?for=probe"))
    provider = ProviderConfig(
        type="vertex", api_base=vertex.url, location=vertex_mock.LOCATION, service_account_json=key
    )
    assert await probe(client, provider, "gemini-2.5-flash") == 200
    assert vertex.last.path.endswith(f"/locations/{vertex_mock.LOCATION}/models")


async def test_tenant_connection_test_reports_a_refused_key_without_failing(
    cloud, client, monkeypatch
):
    _, vertex = cloud
    vertex.reset()
    monkeypatch.setattr(cache, "_cache", {})
    forged = vertex_mock.service_account(
        f"{vertex.url}/token", private_key=vertex_mock.FORGED_KEY_PEM
    )
    row = SimpleNamespace(
        provider_type="vertex", api_base=vertex.url, api_version=None, name="tenant-vertex"
    )
    # A tenant gives a regional endpoint; here the mock's address stands for one.
    monkeypatch.setattr(vertex_adapter, "_location_of", lambda base: vertex_mock.LOCATION)
    # The tenant's addresses pass a policy that lets loopback through for the test.
    egress = EgressPolicy(allow_http=True, allow_private=True)
    result = await connection_test(client, row, json.dumps(forged), egress)
    assert result == {
        "ok": False,
        "status": None,
        "latency_ms": None,
        "message": "the Google OAuth token endpoint refused the gateway's credentials "
        "(HTTP 400): invalid_grant, Invalid JWT: Signature verification failed",
    }
    assert vertex.token_requests == 1  # through the tenant's policy, to the tenant's endpoint
