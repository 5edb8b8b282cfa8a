"""The native lanes, byte for byte: a Messages body to an Anthropic deployment and a
Responses body to an OpenAI or Azure deployment reach the provider exactly as the client
wrote them (same bytes, fields the gateway does not know included) but for `model` and an
output limit above the deployment's, and the provider's answer, complete or streamed,
reaches the client exactly as the provider sent it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import full_config
from tests.mocks.anthropic_mock import thinking_signature
from tests.support.gateway import MASTER_KEY, GatewayProcess

CAP = 2000
THOUGHT = "The user wants the weather; I should call the tool."
BETAS = "context-management-2025-06-27,interleaved-thinking-2025-05-14"


def compact(body: dict[str, Any]) -> bytes:
    """JSON as clients and the gateway write it: no spaces, UTF-8, keys in order."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    config, env = full_config(mocks)
    capped = {"max_output_tokens": CAP}
    config["models"]["claude-capped"] = {
        "deployments": [
            {"provider": "anthropic-main", "model": "claude-3-5-haiku-latest", **capped}
        ]
    }
    config["models"]["gpt-capped"] = {
        "deployments": [{"provider": "openai-main", "model": "gpt-4o-mini", **capped}]
    }
    with GatewayProcess(config, tmp_path_factory.mktemp("golden"), env=env) as process:
        yield process


def post(gw: GatewayProcess, path: str, body: bytes, **headers: str) -> httpx.Response:
    headers = {
        "authorization": f"Bearer {MASTER_KEY}",
        "content-type": "application/json",
        **headers,
    }
    return httpx.post(f"{gw.url}{path}", content=body, headers=headers, timeout=30)


# -- Messages to Anthropic ------------------------------------------------------------------


def messages_body(model: str, stream: bool) -> dict[str, Any]:
    """A Messages request using what a gateway could lose: cache breakpoints everywhere,
    a signed thinking block, beta features, fields newer than the gateway's schema."""
    ephemeral = {"type": "ephemeral"}
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 2048,
        "system": [{"type": "text", "text": "Sé breve. 简短。", "cache_control": ephemeral}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "weather in Zürich",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": THOUGHT,
                        "signature": thinking_signature(THOUGHT),
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "get_weather",
                        "input": {"city": "Zürich"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01A",
                        "content": [{"type": "text", "text": "snow, -2°C"}],
                        "cache_control": ephemeral,
                    }
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "The weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                "cache_control": ephemeral,
            },
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919", "keep": 3}]},
        "output_config": {"effort": "medium"},
        "metadata": {"user_id": "user-7"},
        "service_tier": "auto",
        "top_k": 40,
    }
    if stream:
        body["stream"] = True
    return body


@pytest.mark.parametrize("stream", [False, True])
def test_messages_reach_anthropic_as_sent_and_come_back_as_answered(gw, mocks, stream):
    mock = mocks["anthropic"]
    sent = compact(messages_body("claude", stream))
    response = post(
        gw, "/v1/messages", sent, **{"anthropic-version": "2023-06-01", "anthropic-beta": BETAS}
    )
    assert response.status_code == 200, response.text
    [got] = mock.requests
    assert got.raw == compact(messages_body("claude-3-5-haiku-latest", stream))
    assert (
        got.headers["anthropic-beta"] == BETAS and got.headers["anthropic-version"] == "2023-06-01"
    )
    assert "authorization" not in {k.lower() for k in got.headers}  # the gateway's key, not ours
    assert got.headers["x-api-key"] == "sk-ant-test"
    [answered] = mock.answers
    assert response.content == answered  # JSON or the whole event stream, byte for byte
    assert response.headers["x-perpetuo-provider"] == "anthropic-main"


@pytest.mark.parametrize("budget,cut_to", [(1024, 1024), (3000, CAP - 1)])
def test_an_output_limit_above_the_deployment_is_cut_and_nothing_else_changes(
    gw, mocks, budget, cut_to
):
    """A thinking budget that fitted under the client's limit is cut to fit under the
    deployment's (Anthropic wants it below max_tokens): a valid request stays valid."""
    body = {**messages_body("claude-capped", False), "max_tokens": 5000}
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    response = post(gw, "/v1/messages", compact(body), **{"anthropic-version": "2023-06-01"})
    assert response.status_code == 200, response.text
    upstream = {**body, "model": "claude-3-5-haiku-latest", "max_tokens": CAP}
    upstream["thinking"] = {"type": "enabled", "budget_tokens": cut_to}
    assert mocks["anthropic"].last.raw == compact(upstream)


def test_a_field_anthropic_refuses_is_forwarded_and_refused_by_anthropic(gw, mocks):
    body = {**messages_body("claude", False), "future_knob": {"level": 2}}
    response = post(gw, "/v1/messages", compact(body), **{"anthropic-version": "2023-06-01"})
    assert mocks["anthropic"].last.body["future_knob"] == {"level": 2}
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "future_knob" in error["error"]["message"]


# -- Responses to OpenAI and Azure ----------------------------------------------------------


def responses_body(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "instructions": "Antworte kurz.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Grüße, 日本"}]},
        ],
        "include": ["reasoning.encrypted_content", "message.output_text.logprobs"],
        "reasoning": {"effort": "low", "summary": "auto", "future_knob": True},
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": False,
                "defer_loading": False,
            },
            {"type": "web_search_preview", "search_context_size": "low"},
        ],
        "tool_choice": "none",
        "parallel_tool_calls": False,
        "prompt_cache_key": "conversation-42",
        "prompt_cache_retention": "24h",
        "safety_identifier": "user-7",
        "metadata": {"ticket": "T-1"},
        "service_tier": "auto",
        "truncation": "auto",
        "top_logprobs": 2,
        "max_tool_calls": 3,
        "max_output_tokens": 500,
        "store": True,
    }
    if stream:
        body["stream"] = True
    return body


RESPONSES_TARGETS = [  # alias, upstream model, path
    ("gpt-4o-mini", "gpt-4o-mini", "/v1/responses"),
    ("azure-v1-gpt", "gpt-4o", "/openai/v1/responses"),
    ("azure-gpt", "my-gpt4o-deployment", "/openai/responses"),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("alias,model,path", RESPONSES_TARGETS)
def test_responses_reach_openai_as_sent_and_come_back_as_answered(
    gw, mocks, alias, model, path, stream
):
    mock = mocks["openai"]
    response = post(gw, "/v1/responses", compact(responses_body(alias, stream)))
    assert response.status_code == 200, response.text
    [got] = mock.requests
    assert got.path == path and got.raw == compact(responses_body(model, stream))
    [answered] = mock.answers
    assert response.content == answered
    if not stream:
        assert response.json()["id"] in mock.stored_responses  # the provider's own id


def test_responses_output_limit_is_cut_to_the_deployment(gw, mocks):
    body = {**responses_body("gpt-capped", False), "max_output_tokens": 5000}
    assert post(gw, "/v1/responses", compact(body)).status_code == 200
    upstream = {**body, "model": "gpt-4o-mini", "max_output_tokens": CAP}
    assert mocks["openai"].last.raw == compact(upstream)


def test_a_parameter_openai_refuses_is_forwarded_and_refused_by_openai(gw, mocks):
    body = {**responses_body("gpt-4o-mini", False), "future_parameter": "on"}
    response = post(gw, "/v1/responses", compact(body))
    assert mocks["openai"].last.body["future_parameter"] == "on"
    assert response.status_code == 400
    assert "future_parameter" in response.json()["error"]["message"]
