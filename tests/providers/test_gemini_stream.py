"""Gemini adapter, streams: `streamGenerateContent?alt=sse` events as OpenAI chunks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from perpetuo.providers.base import Target
from perpetuo.providers.gemini import GeminiAdapter
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.sse import SSEEvent, decode_sse
from perpetuo.transport.url import URL

ADAPTER = GeminiAdapter()
TARGET = Target(
    "g", "gemini", "gemini-2.0-flash", URL.parse("https://generativelanguage.googleapis.com")
)
ENVELOPE = {"modelVersion": "gemini-2.0-flash-001", "responseId": "resp-1"}


def event(
    parts: list[dict] | None = None,
    reason: str | None = None,
    index: int = 0,
    usage: dict | None = None,
) -> dict[str, Any]:
    cand: dict[str, Any] = {"index": index}
    if parts is not None:
        cand["content"] = {"role": "model", "parts": parts}
    if reason:
        cand["finishReason"] = reason
    data: dict[str, Any] = {"candidates": [cand], **ENVELOPE}
    if usage:
        data["usageMetadata"] = usage
    return data


async def translate(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def source() -> AsyncIterator[SSEEvent]:
        for data in events:
            yield SSEEvent(json.dumps(data))

    return [chunk async for chunk in ADAPTER.chat_stream(source(), TARGET)]


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


async def test_text_stream_with_usage_from_the_last_event():
    chunks = await translate(
        [
            event([{"text": "Hel"}], usage={"promptTokenCount": 9, "totalTokenCount": 9}),
            event([{"text": "lo"}], usage={"promptTokenCount": 9, "totalTokenCount": 9}),
            event(
                [{"text": "!"}],
                "STOP",
                usage={"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
            ),
        ]
    )
    assert deltas(chunks) == [
        {"role": "assistant", "content": "Hel"},
        {"content": "lo"},
        {"content": "!"},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, "stop"]
    assert {c["id"] for c in chunks} == {"resp-1"}
    assert {c["model"] for c in chunks} == {"gemini-2.0-flash-001"}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    final = chunks[-1]
    assert final["choices"] == []
    assert (final["usage"]["prompt_tokens"], final["usage"]["completion_tokens"]) == (9, 3)


async def test_a_character_split_across_network_chunks_is_kept_whole():
    text = "Grüße — 日本 👋🏽"
    raw = b"".join(
        b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n"
        for e in (event([{"text": text}]), event([{"text": " ok"}], "STOP"))
    )
    cut = raw.index("👋".encode()) + 2  # inside the four bytes of the emoji

    async def network() -> AsyncIterator[bytes]:
        yield raw[:cut]
        yield raw[cut:]

    chunks = [c async for c in ADAPTER.chat_stream(decode_sse(network()), TARGET)]
    assert "".join(d.get("content", "") for d in deltas(chunks)) == text + " ok"


async def test_function_calls_arrive_whole_and_numbered():
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
    chunks = await translate(
        [
            event(
                [
                    {**call, "thoughtSignature": "c2ln"},
                    {"functionCall": {"name": "get_time", "args": {}}},
                ]
            ),
            event([{"functionCall": {"name": "get_date"}}], "STOP"),
        ]
    )
    first, second = deltas(chunks)
    assert first["role"] == "assistant"
    calls = first["tool_calls"] + second["tool_calls"]
    assert [c["index"] for c in calls] == [0, 1, 2]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time", "get_date"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    assert len({c["id"] for c in calls}) == 3 and all(c["type"] == "function" for c in calls)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # The same calls in one non-streamed answer get the same ids.
    whole = ADAPTER.chat_response(
        json.dumps(event([{**call, "thoughtSignature": "c2ln"}], "STOP")).encode(), TARGET
    )
    assert whole["choices"][0]["message"]["tool_calls"][0]["id"] == calls[0]["id"]


async def test_empty_events_send_nothing_but_the_role():
    chunks = await translate(
        [
            event([{"text": ""}]),
            event([]),
            {"usageMetadata": {"promptTokenCount": 2, "totalTokenCount": 2}, **ENVELOPE},
            event([{"text": "plan", "thought": True}]),
            event([{"text": "done"}], "STOP"),
        ]
    )
    assert deltas(chunks) == [{"role": "assistant"}, {"content": "done"}]
    assert chunks[-1]["usage"]["prompt_tokens"] == 2


async def test_two_candidates_each_get_a_role_and_a_finish():
    chunks = await translate(
        [
            event([{"text": "a"}], index=0),
            event([{"text": "b"}], index=1),
            event(None, "STOP", index=0),
            event(None, "MAX_TOKENS", index=1),
        ]
    )
    choices = [c["choices"][0] for c in chunks]
    assert [(c["index"], c["delta"], c["finish_reason"]) for c in choices] == [
        (0, {"role": "assistant", "content": "a"}, None),
        (1, {"role": "assistant", "content": "b"}, None),
        (0, {}, "stop"),
        (1, {}, "length"),
    ]


async def test_safety_stop_at_the_start():
    chunks = await translate([event(None, "SAFETY")])
    assert chunks == [
        {
            "id": "resp-1",
            "object": "chat.completion.chunk",
            "created": chunks[0]["created"],
            "model": "gemini-2.0-flash-001",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant"},
                    "logprobs": None,
                    "finish_reason": "content_filter",
                }
            ],
        }
    ]


async def test_a_blocked_prompt_fails_before_any_chunk():
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, **ENVELOPE}
    with pytest.raises(UpstreamError) as exc:
        await translate([blocked])
    assert exc.value.kind is UpstreamErrorKind.CONTENT_POLICY


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            {"code": 500, "message": "Internal error", "status": "INTERNAL"},
            UpstreamErrorKind.SERVER,
        ),
        (
            {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"},
            UpstreamErrorKind.RATE_LIMIT,
        ),
        ("boom", UpstreamErrorKind.SERVER),
    ],
)
async def test_an_error_inside_the_stream_raises(error, kind):
    received = []

    async def source() -> AsyncIterator[SSEEvent]:
        yield SSEEvent(json.dumps(event([{"text": "partial"}])))
        yield SSEEvent(json.dumps({"error": error}))

    with pytest.raises(UpstreamError) as exc:
        async for chunk in ADAPTER.chat_stream(source(), TARGET):
            received.append(chunk)
    assert exc.value.kind is kind
    assert deltas(received) == [{"role": "assistant", "content": "partial"}]


async def test_unreadable_event_is_a_bad_response():
    async def source() -> AsyncIterator[SSEEvent]:
        yield SSEEvent("{not json")

    with pytest.raises(UpstreamError) as exc:
        [c async for c in ADAPTER.chat_stream(source(), TARGET)]
    assert exc.value.kind is UpstreamErrorKind.BAD_RESPONSE
