"""The Anthropic adapter's complete responses and error classification, as plain functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perpetuo.providers.anthropic import AnthropicAdapter
from perpetuo.providers.anthropic.request import JSON_TOOL
from perpetuo.providers.base import Target
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.url import URL

ADAPTER = AnthropicAdapter()
TARGET = Target("anth", "anthropic", "claude-x", URL.parse("https://api.example"), "sk-ant-k1")
K = UpstreamErrorKind


# --- responses -----------------------------------------------------------------------------


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> bytes:
    return json.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
        }
    ).encode()


def test_text_response_with_cache_usage():
    body = message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Hello "},
            {"type": "text", "text": "there"},
        ],
        cache_read_input_tokens=100,
        cache_creation_input_tokens=7,
    )
    out = ADAPTER.chat_response(body, TARGET)
    assert out["id"] == "msg_01" and out["object"] == "chat.completion"
    assert out["model"] == "claude-3-5-haiku-20241022"
    choice = out["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hello there",
        "refusal": None,
        "reasoning_content": "hmm",
        # The signed block itself, for the next turn to replay to Anthropic.
        "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "s"}],
    }
    assert choice["finish_reason"] == "stop"
    assert out["usage"]["prompt_tokens"] == 117
    assert out["usage"]["completion_tokens"] == 5
    assert out["usage"]["total_tokens"] == 122
    assert out["usage"]["prompt_tokens_details"]["cached_tokens"] == 100


def test_tool_use_response():
    out = ADAPTER.chat_response(
        message(
            [
                {
                    "type": "tool_use",
                    "id": "toolu_a",
                    "name": "get_weather",
                    "input": {"city": "Köln"},
                },
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
            ],
            "tool_use",
        ),
        TARGET,
    )
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["toolu_a", "toolu_b"]
    assert calls[0]["type"] == "function"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Köln"}
    assert calls[1]["function"] == {"name": "get_time", "arguments": "{}"}


def test_json_tool_answer_becomes_content():
    out = ADAPTER.chat_response(
        message(
            [{"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"a": [1]}}], "tool_use"
        ),
        TARGET,
    )
    choice = out["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"a": [1]}
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop_reason, finish):
    out = ADAPTER.chat_response(message([{"type": "text", "text": "x"}], stop_reason), TARGET)
    assert out["choices"][0]["finish_reason"] == finish


def test_empty_content_and_unreadable_bodies():
    out = ADAPTER.chat_response(message([]), TARGET)
    assert out["choices"][0]["message"]["content"] is None
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.chat_response(b"<html>", TARGET)
    assert exc.value.kind is K.BAD_RESPONSE
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.chat_response(b'{"id": "msg", "type": "message"}', TARGET)
    assert exc.value.kind is K.BAD_RESPONSE


# --- errors --------------------------------------------------------------------------------


def anthropic_error(type_: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "type_", "kind"),
    [
        (400, "invalid_request_error", K.INVALID_REQUEST),
        (401, "authentication_error", K.AUTH),
        (402, "billing_error", K.AUTH),
        (403, "permission_error", K.AUTH),
        (404, "not_found_error", K.NOT_FOUND),
        (413, "request_too_large", K.INVALID_REQUEST),
        (429, "rate_limit_error", K.RATE_LIMIT),
        (500, "api_error", K.SERVER),
        (504, "timeout_error", K.TIMEOUT),
        (529, "overloaded_error", K.OVERLOADED),
    ],
)
def test_documented_error_types(status, type_, kind):
    error = ADAPTER.error(status, {}, anthropic_error(type_, "something happened"))
    assert error.kind is kind
    assert error.status == status
    assert error.message == "something happened"


def test_prompt_too_long_is_context_length():
    body = anthropic_error("invalid_request_error", "prompt is too long: 210000 tokens > 200000")
    assert ADAPTER.error(400, {}, body).kind is K.CONTEXT_LENGTH


def test_request_too_large_keeps_its_code_even_from_cloudflare():
    error = ADAPTER.error(413, {}, b"<html>413 Request Entity Too Large</html>")
    assert error.kind is K.INVALID_REQUEST and error.code == "request_too_large"
    sized = ADAPTER.error(413, {}, anthropic_error("request_too_large", "exceeds the maximum"))
    assert sized.kind is K.INVALID_REQUEST


def test_retry_after_and_secret_redaction():
    error = ADAPTER.error(
        429,
        {"retry-after": "12"},
        anthropic_error("rate_limit_error", "limit hit for key sk-ant-api03-abcdefghijkl"),
    )
    assert error.retry_after == 12
    assert "sk-ant" not in error.message and "[redacted]" in error.message


def test_non_anthropic_bodies_fall_back_to_the_status():
    assert ADAPTER.error(502, {}, b"Bad Gateway").kind is K.SERVER
    assert ADAPTER.error(529, {}, b"").kind is K.OVERLOADED
    assert ADAPTER.error(401, {}, b"{}").kind is K.AUTH


def test_error_object_in_a_200_body():
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.chat_response(anthropic_error("overloaded_error", "Overloaded"), TARGET)
    assert exc.value.kind is K.OVERLOADED
