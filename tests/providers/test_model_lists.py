"""Providers' model lists read into pages: each format as the provider answers it, and the
requests that ask for every page."""

from __future__ import annotations

import json

import pytest

from perpetuo.providers.base import Target
from perpetuo.providers.model_lists import (
    anthropic_page,
    bedrock_page,
    cohere_page,
    gemini_page,
    openai_page,
    vertex_page,
)
from perpetuo.providers.registry import adapter_for
from perpetuo.schema.errors import UpstreamError
from perpetuo.transport.url import URL


def raw(data: object) -> bytes:
    return json.dumps(data).encode()


def test_openai_format_lists_with_hosts_extras():
    page = openai_page(
        raw(
            {
                "object": "list",
                "data": [
                    {"id": "gpt-4o-mini", "object": "model"},
                    {"id": "llama-3.3-70b-versatile", "context_window": 131072},
                    {"id": "mistral-large-latest", "max_context_length": 131072},
                    {"id": "Qwen/Qwen3-8B", "max_model_len": 32768},
                    {
                        "id": "openai/gpt-4o-mini",
                        "context_length": 128000,
                        "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
                        "top_provider": {"max_completion_tokens": 16384},
                    },
                    {"id": 7},  # unreadable entries are skipped, not fatal
                    {"id": "bad-numbers", "context_length": -5, "pricing": {"prompt": "x"}},
                ],
            }
        )
    )
    assert page.cursor is None
    by_id = {m.id: m for m in page.models}
    assert list(by_id) == [
        "gpt-4o-mini",
        "llama-3.3-70b-versatile",
        "mistral-large-latest",
        "Qwen/Qwen3-8B",
        "openai/gpt-4o-mini",
        "bad-numbers",
    ]
    assert by_id["llama-3.3-70b-versatile"].context_window == 131072
    assert by_id["mistral-large-latest"].context_window == 131072
    assert by_id["Qwen/Qwen3-8B"].context_window == 32768
    routed = by_id["openai/gpt-4o-mini"]
    assert (routed.input_price, routed.output_price) == (0.15, 0.6)
    assert (routed.context_window, routed.max_output) == (128000, 16384)
    bad = by_id["bad-numbers"]
    assert (bad.context_window, bad.input_price) == (None, None)


def test_together_answers_a_bare_list():
    page = openai_page(
        raw([{"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "context_length": 131072}])
    )
    assert [(m.id, m.context_window) for m in page.models] == [
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", 131072)
    ]


def test_anthropic_pages_by_last_id():
    more = anthropic_page(
        raw(
            {
                "data": [{"id": "claude-sonnet-4-5"}],
                "has_more": True,
                "last_id": "claude-sonnet-4-5",
            }
        )
    )
    assert more.cursor == "claude-sonnet-4-5" and more.models[0].endpoints == {"chat"}
    assert anthropic_page(raw({"data": [], "has_more": False, "last_id": None})).cursor is None


def test_gemini_methods_and_limits():
    page = gemini_page(
        raw(
            {
                "models": [
                    {
                        "name": "models/gemini-2.5-flash",
                        "inputTokenLimit": 1048576,
                        "outputTokenLimit": 65536,
                        "supportedGenerationMethods": ["generateContent", "countTokens"],
                    },
                    {
                        "name": "models/gemini-embedding-001",
                        "supportedGenerationMethods": ["embedContent"],
                    },
                    {"name": "models/aqa", "supportedGenerationMethods": ["generateAnswer"]},
                ],
                "nextPageToken": "p2",
            }
        )
    )
    flash, embedding, aqa = page.models
    assert (flash.id, flash.endpoints, flash.context_window, flash.max_output) == (
        "gemini-2.5-flash",
        {"chat"},
        1048576,
        65536,
    )
    assert embedding.endpoints == {"embeddings"} and aqa.endpoints is None
    assert page.cursor == "p2"


def test_cohere_bedrock_and_vertex_lists():
    cohere = cohere_page(
        raw(
            {
                "models": [
                    {
                        "name": "command-a-03-2025",
                        "endpoints": ["chat", "generate"],
                        "context_length": 256000.0,
                    },
                    {"name": "embed-v4.0", "endpoints": ["embed"]},
                    {"name": "command", "endpoints": ["generate"], "is_deprecated": True},
                ],
                "next_page_token": "abc",
            }
        )
    )
    assert [(m.id, m.endpoints, m.context_window) for m in cohere.models] == [
        ("command-a-03-2025", {"chat"}, 256000),
        ("embed-v4.0", {"embeddings"}, None),
    ]
    assert cohere.cursor == "abc"
    bedrock = bedrock_page(
        raw(
            {
                "modelSummaries": [
                    {
                        "modelId": "amazon.nova-pro-v1:0",
                        "outputModalities": ["TEXT"],
                        "inferenceTypesSupported": ["ON_DEMAND"],
                    },
                    {"modelId": "amazon.titan-embed-text-v2:0", "outputModalities": ["EMBEDDING"]},
                    {
                        "modelId": "anthropic.claude-opus-4-v1:0",
                        "outputModalities": ["TEXT"],
                        "inferenceTypesSupported": ["INFERENCE_PROFILE"],
                    },
                ]
            }
        )
    )
    assert [(m.id, m.endpoints) for m in bedrock.models] == [
        ("amazon.nova-pro-v1:0", {"chat"}),
        ("amazon.titan-embed-text-v2:0", {"embeddings"}),
    ]
    vertex = vertex_page(
        raw({"publisherModels": [{"name": "publishers/google/models/gemini-2.5-pro"}]})
    )
    assert [m.id for m in vertex.models] == ["gemini-2.5-pro"]


@pytest.mark.parametrize(
    ("reader", "body"),
    [
        (openai_page, b"[1,"),
        (openai_page, b'"text"'),
        (openai_page, raw({"data": "x"})),
        (cohere_page, raw({"models": 3})),
        (gemini_page, raw(["not", "an", "object"])),
    ],
)
def test_unreadable_lists_are_bad_responses(reader, body):
    with pytest.raises(UpstreamError) as caught:
        reader(body)
    assert caught.value.kind == "bad_response"


def target(kind: str, base: str, **fields) -> Target:
    return Target("p", kind, "-", URL.parse(base), "key-1", **fields)


@pytest.mark.parametrize(
    ("kind", "base", "first", "next_"),
    [
        ("openai", "https://api.openai.com/v1", "https://api.openai.com/v1/models", None),
        ("groq", "https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1/models", None),
        (
            "anthropic",
            "https://api.anthropic.com",
            "https://api.anthropic.com/v1/models?limit=1000",
            "https://api.anthropic.com/v1/models?limit=1000&after_id=claude+x",
        ),
        (
            "gemini",
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000",
            "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000&pageToken=claude+x",
        ),
        (
            "cohere",
            "https://api.cohere.com",
            "https://api.cohere.com/v1/models?page_size=1000",
            "https://api.cohere.com/v1/models?page_size=1000&page_token=claude+x",
        ),
    ],
)
def test_model_list_requests_ask_for_every_page(kind, base, first, next_):
    adapter = adapter_for(kind)
    call = adapter.models_request(target(kind, base))
    assert (call.method, str(call.url), call.body) == ("GET", first, b"")
    if next_ is not None:
        assert str(adapter.models_request(target(kind, base), "claude x").url) == next_


def test_portkey_lists_with_its_own_key_header():
    call = adapter_for("portkey").models_request(target("portkey", "https://api.portkey.ai/v1"))
    assert ("x-portkey-api-key", "key-1") in call.headers
    assert not any(name == "authorization" for name, _ in call.headers)
