"""A gateway with Bedrock and Vertex AI deployments (on their mocks) beside the usual mocked
providers, for the cloud providers' end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import full_config
from tests.mocks import bedrock_mock, vertex_mock
from tests.mocks.bedrock_mock import BedrockMock
from tests.mocks.server import MockUpstream
from tests.mocks.vertex_mock import VertexMock
from tests.support.gateway import MASTER_KEY, GatewayProcess


def mixed_aliases() -> dict[str, Any]:
    """Aliases whose deployments span a cloud provider and another one (fallback order)."""
    return {
        "nova-then-openai": {
            "deployments": [
                {"provider": "bedrock-main", "model": bedrock_mock.NOVA},
                {"provider": "openai-main", "model": "gpt-4o-mini", "priority": 1},
            ]
        },
        "anthropic-then-bedrock-claude": {
            "deployments": [
                {"provider": "anthropic-main", "model": "claude-3-5-haiku-latest"},
                {
                    "provider": "bedrock-main",
                    "model": f"us.{bedrock_mock.CLAUDE}",
                    "priority": 1,
                },
            ]
        },
        "vertex-then-gemini": {
            "deployments": [
                {"provider": "vertex-main", "model": "gemini-2.5-flash"},
                {"provider": "gemini-main", "model": "gemini-2.0-flash", "priority": 1},
            ]
        },
    }


@pytest.fixture(scope="session")
def cloud_mocks() -> Iterator[dict[str, MockUpstream]]:
    started = {"bedrock": BedrockMock().start(), "vertex": VertexMock().start()}
    yield started
    for mock in started.values():
        mock.stop()


@pytest.fixture
def bedrock(cloud_mocks: dict[str, MockUpstream]) -> BedrockMock:
    mock = cloud_mocks["bedrock"]
    mock.reset()
    assert isinstance(mock, BedrockMock)
    return mock


@pytest.fixture
def vertex(cloud_mocks: dict[str, MockUpstream]) -> VertexMock:
    mock = cloud_mocks["vertex"]
    mock.reset()
    assert isinstance(mock, VertexMock)
    return mock


@pytest.fixture(scope="session")
def cloud_gateway(
    mocks: dict[str, MockUpstream],
    cloud_mocks: dict[str, MockUpstream],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config, env = full_config(mocks)
    for module in (bedrock_mock, vertex_mock):
        fragment = module.config_fragment(cloud_mocks[module.MOCK_NAME])  # type: ignore[arg-type]
        config["providers"].update(fragment["providers"])
        config["models"].update(fragment["models"])
        env.update(module.ENV)
    config["models"].update(mixed_aliases())
    # A provider with the credential chain on, finding a container role (the Bedrock mock's
    # endpoint) and nothing before it: no keys in the environment, no shared files.
    bedrock = cloud_mocks["bedrock"]
    config["providers"]["bedrock-role"] = {
        "type": "bedrock",
        "api_base": bedrock.url,
        "region": bedrock_mock.REGION,
        "credential_chain": True,
    }
    config["models"]["nova-role"] = {
        "deployments": [{"provider": "bedrock-role", "model": bedrock_mock.NOVA}]
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
            "AWS_CONFIG_FILE": "/nonexistent/config",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{bedrock.url}/container-credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": bedrock_mock.CONTAINER_TOKEN,
        }
    )
    process = GatewayProcess(config, tmp_path_factory.mktemp("cloud"), env=env).start()
    yield process
    process.stop()


@pytest.fixture
def cloud_client(cloud_gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{cloud_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)
