"""A gateway configured for the endpoints beside chat (images, audio, rerank, completions,
moderations), on the session's OpenAI and Gemini mocks and a Cohere mock of its own, with
helpers for keys and request logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.mocks.cohere_mock import CohereMock
from tests.mocks.server import MockUpstream
from tests.support.gateway import MASTER_KEY, GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
LOGS = "/api/workspaces/ws_default/logs"
ENV = {
    "TEST_OPENAI_KEY": "sk-test-openai",
    "TEST_AZURE_KEY": "azure-test-key",
    "TEST_GEMINI_KEY": "AIza-test-gemini-key-000000000",
    "TEST_COHERE_KEY": "co-test-key",
}


def one(provider: str, model: str, **alias: Any) -> dict[str, Any]:
    return {"deployments": [{"provider": provider, "model": model}], **alias}


def operations_config(openai: MockUpstream, gemini: MockUpstream, cohere: MockUpstream) -> dict:
    return {
        "server": {"max_upload_bytes": 256 * 1024},
        "providers": {
            "openai-main": {
                "type": "openai",
                "api_base": f"{openai.url}/v1",
                "api_key": "${TEST_OPENAI_KEY}",
            },
            "openai-badkey": {
                "type": "openai",
                "api_base": f"{openai.url}/v1",
                "api_key": "sk-wrong-key-123456",
            },
            "azure-main": {
                "type": "azure",
                "api_base": openai.url,
                "api_key": "${TEST_AZURE_KEY}",
                "api_version": "2024-10-21",
            },
            "vllm-local": {  # vLLM started with --api-key
                "type": "vllm",
                "api_base": f"{openai.url}/v1",
                "api_key": "${TEST_OPENAI_KEY}",
            },
            "gemini-main": {
                "type": "gemini",
                "api_base": gemini.url,
                "api_key": "${TEST_GEMINI_KEY}",
            },
            "cohere-main": {
                "type": "cohere",
                "api_base": cohere.url,
                "api_key": "${TEST_COHERE_KEY}",
            },
            "cohere-badkey": {"type": "cohere", "api_base": cohere.url, "api_key": "co-wrong"},
            "unreachable": {
                "type": "openai",
                "api_base": "http://127.0.0.1:9/v1",
                "api_key": "sk-x",
                "timeouts": {"connect": 2},
            },
        },
        "models": {
            # images
            "dall-e-3": one("openai-main", "dall-e-3"),
            "dall-e-2": one("openai-main", "dall-e-2"),
            "gpt-image-1": one("openai-main", "gpt-image-1"),
            "azure-image": one("azure-main", "image-deployment", endpoints=["images"]),
            "imagen": one("gemini-main", "imagen-4.0-generate-001"),
            "gemini-image": one("gemini-main", "gemini-2.5-flash-image-preview"),
            "image-failover": {
                "deployments": [
                    {"provider": "unreachable", "model": "dall-e-3"},
                    {"provider": "openai-main", "model": "dall-e-3"},
                ]
            },
            "image-fallback": one("openai-badkey", "dall-e-3", fallbacks=["imagen"]),
            # audio
            "whisper-1": one("openai-main", "whisper-1"),
            "gpt-4o-transcribe": one("openai-main", "gpt-4o-transcribe"),
            "azure-whisper": one("azure-main", "whisper-dep", endpoints=["transcriptions"]),
            "tts-1": one("openai-main", "tts-1"),
            "azure-tts": one("azure-main", "tts-dep", endpoints=["speech"]),
            "speech-failover": {
                "deployments": [
                    {"provider": "unreachable", "model": "tts-1"},
                    {"provider": "openai-main", "model": "tts-1"},
                ]
            },
            # rerank
            "rerank-v3.5": one("cohere-main", "rerank-v3.5"),
            "vllm-rerank": one("vllm-local", "BAAI/bge-reranker-v2-m3"),
            "rerank-failover": {
                "deployments": [
                    {"provider": "cohere-badkey", "model": "rerank-v3.5"},
                    {"provider": "vllm-local", "model": "BAAI/bge-reranker-v2-m3"},
                ]
            },
            # text completions and moderations
            "gpt-3.5-turbo-instruct": one("openai-main", "gpt-3.5-turbo-instruct"),
            "vllm-llama": one("vllm-local", "meta-llama/Llama-3.1-8B-Instruct"),
            "azure-instruct": one("azure-main", "instruct-dep", endpoints=["completions"]),
            "completion-failover": {
                "deployments": [
                    {"provider": "unreachable", "model": "gpt-3.5-turbo-instruct"},
                    {"provider": "openai-main", "model": "gpt-3.5-turbo-instruct"},
                ]
            },
            "omni-moderation-latest": one("openai-main", "omni-moderation-latest"),
            # chat and embeddings, for the wrong-endpoint checks
            "gpt-4o-mini": one("openai-main", "gpt-4o-mini"),
            "text-embedding-3-small": one("openai-main", "text-embedding-3-small"),
        },
    }


def start_gateway(
    mocks: dict[str, MockUpstream], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[tuple[GatewayProcess, CohereMock]]:
    cohere = CohereMock().start()
    config = operations_config(mocks["openai"], mocks["gemini"], cohere)
    process = GatewayProcess(config, tmp_path_factory.mktemp(name), env=ENV).start()
    try:
        yield process, cohere
    finally:
        process.stop()
        cohere.stop()


def create_key(gw: GatewayProcess, **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{gw.url}/api/workspaces/ws_default/keys",
        headers=ADMIN,
        json={"name": "ops", **fields},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def wait_for_logs(gw: GatewayProcess, key_id: str, count: int) -> list[dict[str, Any]]:
    """The key's request-log entries, newest first, once `count` have been written."""
    deadline = time.monotonic() + 10
    data: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{gw.url}{LOGS}", headers=ADMIN, params={"key_id": key_id, "limit": 200}, timeout=30
        )
        data = response.json()["data"]
        if len(data) >= count:
            return data
        time.sleep(0.1)
    raise AssertionError(f"only {len(data)} of {count} request-log entries arrived")


def wait_until_settled(gw: GatewayProcess, key_id: str, count: int) -> None:
    """Budgets settle after the answer is sent: the log lands after settlement starts."""
    wait_for_logs(gw, key_id, count)
    time.sleep(0.2)


def wav(seconds: float, rate: int = 8000) -> bytes:
    """A silent mono 16-bit PCM WAV file of `seconds`."""
    import struct

    data = b"\x00\x00" * int(seconds * rate)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
