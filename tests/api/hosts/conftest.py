"""A gateway whose deployments are on Cohere (its mock) and on each OpenAI-compatible host
the compat mock plays, for the provider-breadth end-to-end tests. It needs none of the
session's other mocks, so it starts alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.mocks.cohere_mock import CohereMock
from tests.mocks.compat_hosts import HOSTS
from tests.mocks.compat_mock import CompatMock
from tests.support.gateway import MASTER_KEY, GatewayProcess

COHERE_KEY = "co-test-key"
HOST_KEY = "host-key"
# host -> (alias, upstream model)
CHAT_MODELS = {
    "openrouter": "openai/gpt-4o-mini",
    "groq": "llama-3.3-70b-versatile",
    "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "fireworks": "accounts/fireworks/models/deepseek-v3",
    "deepseek": "deepseek-reasoner",
    "ollama": "llama3.2",
    "vllm": "Qwen/Qwen3-8B",
    "portkey": "gpt-4o-mini",
    "featherless": "Qwen/Qwen2.5-7B-Instruct",
    "chutes": "deepseek-ai/DeepSeek-V3-0324",
    "mistral": "mistral-large-latest",
    "xai": "grok-4",
}


def one(provider: str, model: str, **spec: Any) -> dict[str, Any]:
    return {"deployments": [{"provider": provider, "model": model}], **spec}


def hosts_config(cohere: CohereMock, compat: CompatMock) -> dict[str, Any]:
    providers: dict[str, Any] = {
        "cohere-main": {"type": "cohere", "api_base": cohere.url, "api_key": COHERE_KEY},
        "cohere-query": {
            "type": "cohere",
            "api_base": cohere.url,
            "api_key": COHERE_KEY,
            "input_type": "search_query",
        },
        "nim-main": {
            "type": "openai-compatible",
            "api_base": compat.base("nim"),
            "api_key": HOST_KEY,
        },
    }
    for host in CHAT_MODELS:
        provider: dict[str, Any] = {"type": host, "api_base": compat.base(host)}
        if HOSTS[host].key is not None:
            provider["api_key"] = HOST_KEY
        providers[f"{host}-main"] = provider
    providers["openrouter-main"]["headers"] = {
        "HTTP-Referer": "https://app.example.com",
        "X-Title": "Example App",
    }
    providers["portkey-main"]["headers"] = {"x-portkey-virtual-key": "openai-prod-vk"}
    models: dict[str, Any] = {
        f"{host}-chat": one(f"{host}-main", model) for host, model in CHAT_MODELS.items()
    }
    models["openrouter-chat"]["extra_params"] = ["provider", "models", "transforms", "route"]
    models["xai-chat"]["extra_params"] = ["search_parameters"]
    models["mistral-chat"]["extra_params"] = ["safe_prompt"]
    models.update(
        {
            "grok-mini": one("xai-main", "grok-3-mini"),
            "magistral": one("mistral-main", "magistral-medium-latest"),
            "deepseek-v3": one("deepseek-main", "deepseek-chat"),
            "command-a": one(
                "cohere-main",
                "command-a-03-2025",
                extra_params=["documents", "citation_options", "safety_mode"],
            ),
            "cohere-embed": one("cohere-main", "embed-v4.0"),
            "cohere-embed-query": one("cohere-query", "embed-v4.0"),
            "mistral-embed": one("mistral-main", "mistral-embed"),
            "nim-embed": one("nim-main", "nvidia/nv-embedqa-e5-v5", endpoints=["embeddings"]),
            "together-embed": one(
                "together-main", "BAAI/bge-base-en-v1.5", endpoints=["embeddings"]
            ),
        }
    )
    return {"providers": providers, "models": models}


@pytest.fixture(scope="session")
def host_mocks() -> Iterator[tuple[CohereMock, CompatMock]]:
    cohere, compat = CohereMock(COHERE_KEY).start(), CompatMock().start()
    yield cohere, compat
    cohere.stop()
    compat.stop()


@pytest.fixture
def cohere(host_mocks: tuple[CohereMock, CompatMock]) -> CohereMock:
    host_mocks[0].reset()
    return host_mocks[0]


@pytest.fixture
def compat(host_mocks: tuple[CohereMock, CompatMock]) -> CompatMock:
    host_mocks[1].reset()
    return host_mocks[1]


@pytest.fixture(scope="session")
def hosts_gateway(
    host_mocks: tuple[CohereMock, CompatMock], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    config = hosts_config(*host_mocks)
    process = GatewayProcess(config, tmp_path_factory.mktemp("hosts")).start()
    yield process
    process.stop()


@pytest.fixture
def hosts_client(hosts_gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{hosts_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)
