"""The Cohere adapter: chat requests (v2 bodies), answers, streams (from the mock's own event
bytes, which the Cohere SDK reads: test_cohere_mock_sdk.py), embeddings and errors."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from perpetuo.providers.base import Target
from perpetuo.providers.cohere import CohereAdapter
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.sse import decode_sse
from perpetuo.transport.url import URL
from tests.mocks import cohere_chat
from tests.mocks.brain import reply

ADAPTER = CohereAdapter()
TARGET = Target("co", "cohere", "command-a-03-2025", URL.parse("https://api.cohere.com"), "k1")
K = UpstreamErrorKind
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def chat(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return msgspec.convert({"model": "alias", **fields}, ChatCompletionRequest)


def body_of(request: ChatCompletionRequest, extras: dict[str, Any] | None = None) -> dict:
    call = ADAPTER.chat_request(request, TARGET, extras or {})
    assert str(call.url) == "https://api.cohere.com/v2/chat"
    assert ("authorization", "Bearer k1") in call.headers
    return json.loads(call.body)  # type: ignore[arg-type]


def refused(request: ChatCompletionRequest, extras: dict[str, Any] | None = None) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.chat_request(request, TARGET, extras or {})
    assert caught.value.kind is K.UNSUPPORTED and caught.value.status == 400
    return caught.value


# --- requests ------------------------------------------------------------------------------


def test_messages_and_parameters_map_to_cohere_names_and_ranges():
    body = body_of(
        chat(
            messages=[
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"},
                        },
                    ],
                },
            ],
            max_completion_tokens=50,
            temperature=1.5,
            top_p=1.0,
            stop="END",
            seed=7,
            frequency_penalty=1.7,
            presence_penalty=-0.5,
            user="u-1",
            logit_bias={"1": 2},
            parallel_tool_calls=False,
            store=True,
        )
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"},
                },
            ],
        },
    ]
    assert body["max_tokens"] == 50 and body["temperature"] == 1.5 and body["seed"] == 7
    assert body["p"] == 0.99  # Cohere's p tops out below 1
    assert body["stop_sequences"] == ["END"]
    assert (body["frequency_penalty"], body["presence_penalty"]) == (1.0, 0.0)
    assert cohere_chat.check_chat(body) is None  # what the mock (and Cohere) accept
    for dropped in ("user", "logit_bias", "parallel_tool_calls", "store", "top_p", "stop"):
        assert dropped not in body


def test_tool_round_trip_messages():
    history = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "I should look it up.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": ""},  # an empty turn: left out (Cohere refuses it)
    ]
    body = body_of(chat(messages=history, tools=[WEATHER], tool_choice="required"))
    assert body["messages"][1] == {
        "role": "assistant",
        "tool_calls": history[1]["tool_calls"],
        "tool_plan": "I should look it up.",
    }
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert len(body["messages"]) == 3
    assert body["tool_choice"] == "REQUIRED"
    assert body["tools"] == [WEATHER]
    assert cohere_chat.check_chat(body) is None


def test_tool_choices_and_strict_tools():
    assert "tool_choice" not in body_of(chat(tools=[WEATHER], tool_choice="auto"))
    assert body_of(chat(tools=[WEATHER], tool_choice="none"))["tool_choice"] == "NONE"
    other = {
        "type": "function",
        "function": {"name": "get_time"},
    }  # no parameters: Cohere needs some
    named = body_of(
        chat(
            tools=[WEATHER, other],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
    )
    assert named["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    assert named["tool_choice"] == "REQUIRED"
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    assert body_of(chat(tools=[strict]))["strict_tools"] is True
    assert "strict_tools" not in body_of(chat(tools=[WEATHER]))


def test_response_formats_and_their_limits():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert body_of(chat(response_format=fmt))["response_format"] == {
        "type": "json_object",
        "json_schema": schema,
    }
    assert body_of(chat(response_format={"type": "json_object"}))["response_format"] == {
        "type": "json_object"
    }
    assert "response_format" not in body_of(chat(response_format={"type": "text"}))
    assert refused(chat(response_format=fmt, tools=[WEATHER])).param == "response_format"
    documents = {"documents": [{"data": {"text": "x"}}]}
    assert refused(chat(response_format=fmt), documents).param == "response_format"


def test_refused_and_extra_parameters():
    for fields in (
        {"n": 2},
        {"logprobs": True},
        {"audio": {"voice": "x", "format": "wav"}},
        {"web_search_options": {}},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA"}}
                    ],
                }
            ]
        },
    ):
        refused(chat(**fields))
    extras = {
        "documents": [{"id": "d1", "data": {"text": "fact"}}],
        "safety_mode": "STRICT",
        "k": 5,
    }
    body = body_of(chat(), extras)
    assert body["documents"] == extras["documents"] and body["k"] == 5
    assert body["safety_mode"] == "STRICT"


def test_reasoning_effort_becomes_thinking():
    assert body_of(chat(reasoning_effort="medium"))["thinking"] == {
        "type": "enabled",
        "token_budget": 8192,
    }
    assert body_of(chat(reasoning_effort="none"))["thinking"] == {"type": "disabled"}
    given = {"thinking": {"type": "enabled", "token_budget": 100}}
    assert body_of(chat(reasoning_effort="high"), given)["thinking"] == given["thinking"]
    assert "thinking" not in body_of(chat())


def test_stream_flag():
    assert body_of(chat(stream=True))["stream"] is True
    assert "stream" not in body_of(chat())


# --- answers -------------------------------------------------------------------------------


def mock_answer(text: str, body: dict[str, Any] | None = None, thinking: bool = False) -> bytes:
    body = body or {"messages": [{"role": "user", "content": text}]}
    out = reply(cohere_chat.conversation(body))
    return json.dumps(cohere_chat.message_answer("ans-1", out, body, thinking)).encode()


def test_answer_text_usage_and_finish():
    answer = ADAPTER.chat_response(mock_answer("hello there"), TARGET)
    choice = answer["choices"][0]
    assert choice["message"]["content"] == "Echo: hello there"
    assert choice["finish_reason"] == "stop"
    assert answer["id"] == "ans-1" and answer["model"] == "command-a-03-2025"
    usage = answer["usage"]
    # billed units (the mock's `tokens` add a prompt template Cohere does not bill)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (5, 3)
    assert usage["total_tokens"] == 8


def test_answer_with_tool_calls_and_plan():
    body = {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER]}
    answer = ADAPTER.chat_response(mock_answer("", body), TARGET)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "weather?"}
    assert call["id"].startswith("get_weather_")
    assert choice["message"]["reasoning_content"] == "I will call the tools."
    assert choice["message"]["content"] is None


def test_answer_with_thinking_and_citations():
    body = {
        "messages": [{"role": "user", "content": "think hard about the docs"}],
        "documents": [
            {"id": "d1", "data": {"title": "Guide", "url": "https://example.com/g", "text": "t"}},
            "a bare string document",
        ],
    }
    message = ADAPTER.chat_response(mock_answer("", body, thinking=True), TARGET)["choices"][0][
        "message"
    ]
    assert message["content"] == "Echo: think hard about the docs"
    assert message["reasoning_content"] == cohere_chat.THINKING
    assert message["annotations"] == [
        {
            "type": "url_citation",
            "url_citation": {
                "start_index": 0,
                "end_index": 5,
                "url": "https://example.com/g",
                "title": "Guide",
            },
        },
        {
            "type": "url_citation",
            "url_citation": {"start_index": 0, "end_index": 5, "url": "", "title": "doc:1"},
        },
    ]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("SOMETHING_NEW", "stop"),
    ],
)
def test_finish_reasons(reason, finish):
    data = {
        "id": "a",
        "finish_reason": reason,
        "message": {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
    }
    assert (
        ADAPTER.chat_response(json.dumps(data).encode(), TARGET)["choices"][0]["finish_reason"]
        == finish
    )


@pytest.mark.parametrize(("reason", "kind"), [("ERROR", K.SERVER), ("TIMEOUT", K.TIMEOUT)])
def test_failed_generation_is_an_error_not_an_answer(reason, kind):
    data = {
        "id": "a",
        "finish_reason": reason,
        "message": {"role": "assistant", "content": [{"type": "text", "text": "par"}]},
    }
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.chat_response(json.dumps(data).encode(), TARGET)
    assert caught.value.kind is kind


def test_float_counts_and_token_fallback():
    data = {
        "id": "a",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
        "usage": {"tokens": {"input_tokens": 40.0, "output_tokens": 2.0}, "cached_tokens": 30.0},
    }
    usage = ADAPTER.chat_response(json.dumps(data).encode(), TARGET)["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (40, 2)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 30


# --- streams -------------------------------------------------------------------------------


async def aiter_of(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def stream(body: dict[str, Any], thinking: bool = False) -> list[dict[str, Any]]:
    conv = cohere_chat.conversation(body)
    raw = cohere_chat.stream_events("s-1", reply(conv), body, thinking, conv)
    events = decode_sse(aiter_of(raw))
    return [chunk async for chunk in ADAPTER.chat_stream(events, TARGET)]


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


async def test_stream_text_then_finish_then_usage():
    chunks = await stream({"messages": [{"role": "user", "content": "stream me"}]})
    assert deltas(chunks)[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas(chunks)) == "Echo: stream me"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert {c["id"] for c in chunks} == {"s-1"}


async def test_stream_tool_calls_plan_and_thinking():
    body = {
        "messages": [{"role": "user", "content": "think hard, and use all tools"}],
        "tools": [
            WEATHER,
            {
                "type": "function",
                "function": {"name": "get_time", "parameters": {"type": "object"}},
            },
        ],
    }
    chunks = await stream(body, thinking=True)
    parts = deltas(chunks)
    reasoning = "".join(d.get("reasoning_content", "") for d in parts)
    assert reasoning == cohere_chat.THINKING + "I will call the tools."
    starts = [d["tool_calls"][0] for d in parts if "tool_calls" in d and "id" in d["tool_calls"][0]]
    assert [(s["index"], s["function"]["name"]) for s in starts] == [
        (0, "get_weather"),
        (1, "get_time"),
    ]
    arguments = {0: "", 1: ""}
    for d in parts:
        for call in d.get("tool_calls", []):
            arguments[call["index"]] += call["function"].get("arguments", "")
    assert json.loads(arguments[0]) == {"city": "think hard, and use all tools"}
    assert json.loads(arguments[1]) == {}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_citations_as_annotation_deltas():
    body = {
        "messages": [{"role": "user", "content": "think hard: docs?"}],
        "documents": [{"id": "d1", "data": {"title": "Guide", "text": "t"}}],
    }
    chunks = await stream(body, thinking=True)
    annotations = [a for d in deltas(chunks) for a in d.get("annotations", [])]
    assert annotations == [
        {
            "type": "url_citation",
            "url_citation": {"start_index": 0, "end_index": 5, "url": "", "title": "Guide"},
        }
    ]


async def test_stream_that_fails_or_stops_early_raises():
    with pytest.raises(UpstreamError) as failed:
        await stream({"messages": [{"role": "user", "content": "trigger stream error"}]})
    assert failed.value.kind is K.SERVER and "internal error" in failed.value.message
    conv_body = {"messages": [{"role": "user", "content": "cut"}]}
    conv = cohere_chat.conversation(conv_body)
    raw = cohere_chat.stream_events("s-2", reply(conv), conv_body, False, conv)[:-1]
    with pytest.raises(UpstreamError) as cut:
        [c async for c in ADAPTER.chat_stream(decode_sse(aiter_of(raw)), TARGET)]
    assert cut.value.kind is K.BAD_RESPONSE


async def test_stream_and_answer_agree():
    body = {"messages": [{"role": "user", "content": "think hard, weather?"}], "tools": [WEATHER]}
    whole = ADAPTER.chat_response(mock_answer("", body, thinking=True), TARGET)["choices"][0]
    parts = deltas(await stream(body, thinking=True))
    reasoning = "".join(d.get("reasoning_content", "") for d in parts)
    assert reasoning == whole["message"]["reasoning_content"]
    call = next(d["tool_calls"][0] for d in parts if "tool_calls" in d)
    assert call["id"] == whole["message"]["tool_calls"][0]["id"]


# --- embeddings ----------------------------------------------------------------------------


def embedding(**fields: Any) -> EmbeddingRequest:
    return msgspec.convert({"model": "alias", **fields}, EmbeddingRequest)


def test_embeddings_request_input_type_from_request_provider_or_default():
    target = Target("co", "cohere", "embed-v4.0", URL.parse("https://api.cohere.com"), "k1")
    call = ADAPTER.embeddings_request(embedding(input=["a", "b"], dimensions=256), target)
    assert str(call.url) == "https://api.cohere.com/v2/embed"
    assert json.loads(call.body) == {  # type: ignore[arg-type]
        "model": "embed-v4.0",
        "texts": ["a", "b"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 256,
    }
    configured = Target(
        "co", "cohere", "embed-v4.0", target.base_url, "k1", input_type="clustering"
    )
    sent = json.loads(ADAPTER.embeddings_request(embedding(input="a"), configured).body)  # type: ignore[arg-type]
    assert sent["input_type"] == "clustering"
    asked = embedding(input="a", input_type="search_query")
    assert (
        json.loads(ADAPTER.embeddings_request(asked, configured).body)["input_type"]
        == "search_query"
    )  # type: ignore[arg-type]


def test_embeddings_refuse_token_ids_and_too_many_inputs():
    for request in (embedding(input=[[1, 2, 3]]), embedding(input=["x"] * 97)):
        with pytest.raises(UpstreamError) as caught:
            ADAPTER.embeddings_request(request, TARGET)
        assert caught.value.kind is K.UNSUPPORTED


def test_embeddings_answer_float_and_base64():
    data = {
        "id": "e1",
        "embeddings": {"float": [[0.5, -0.25], [1.0, 0.0]]},
        "meta": {"billed_units": {"input_tokens": 4.0}},
    }
    raw = json.dumps(data).encode()
    answer = ADAPTER.embeddings_response(raw, TARGET, embedding(input=["a", "b"]))
    assert [item["embedding"] for item in answer["data"]] == [[0.5, -0.25], [1.0, 0.0]]
    assert answer["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    packed = ADAPTER.embeddings_response(
        raw, TARGET, embedding(input=["a", "b"], encoding_format="base64")
    )
    vector = struct.unpack("<2f", base64.b64decode(packed["data"][0]["embedding"]))
    assert vector == (0.5, -0.25)
    with pytest.raises(UpstreamError):
        ADAPTER.embeddings_response(raw, TARGET, embedding(input=["a", "b", "c"]))


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "kind", "client_status"),
    [
        (400, "invalid request: p must be between 0.01 and 0.99", K.INVALID_REQUEST, 400),
        (
            400,
            "too many tokens: total number of tokens in the prompt cannot exceed 4081",
            K.CONTEXT_LENGTH,
            400,
        ),
        (401, "invalid api token", K.AUTH, 401),
        (402, "Please add a payment method", K.AUTH, 402),
        (404, "model 'x' not found", K.NOT_FOUND, 404),
        (422, "unprocessable", K.INVALID_REQUEST, 422),
        (
            429,
            "You are using a Trial key, which is limited to 10 API calls / minute.",
            K.RATE_LIMIT,
            429,
        ),
        (498, "invalid api token", K.AUTH, 498),
        (499, "request cancelled", K.SERVER, 499),
        (500, "internal server error", K.SERVER, 500),
        (501, "this model does not support tool use", K.UNSUPPORTED, 400),
        (503, "service unavailable", K.OVERLOADED, 503),
        (504, "gateway timeout", K.TIMEOUT, 504),
    ],
)
def test_errors_by_status(status, message, kind, client_status):
    body = json.dumps({"id": "e-1", "message": message}).encode()
    error = ADAPTER.error(status, {"retry-after": "3"}, body)
    assert (error.kind, error.status) == (kind, client_status)
    assert error.message == message and error.retry_after == 3.0


def test_error_without_a_cohere_body():
    error = ADAPTER.error(502, {}, b"<html>bad gateway</html>")
    assert error.kind is K.SERVER and error.message == "upstream returned HTTP 502"
