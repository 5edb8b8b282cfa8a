"""The Anthropic adapter's stream translation, from SSE events to OpenAI chunks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from perpetuo.providers.anthropic import AnthropicAdapter
from perpetuo.providers.anthropic.request import JSON_TOOL
from perpetuo.providers.base import Target
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.sse import SSEEvent, decode_sse
from perpetuo.transport.url import URL

ADAPTER = AnthropicAdapter()
TARGET = Target("anth", "anthropic", "claude-x", URL.parse("https://api.example"), "sk-ant-k1")
K = UpstreamErrorKind


def event(type_: str, **data: Any) -> SSEEvent:
    return SSEEvent(json.dumps({"type": type_, **data}, ensure_ascii=False), type_)


def start(input_tokens: int = 12, **usage: int) -> SSEEvent:
    message = {
        "id": "msg_s1",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage},
    }
    return event("message_start", message=message)


def text_delta(index: int, text: str) -> SSEEvent:
    return event("content_block_delta", index=index, delta={"type": "text_delta", "text": text})


def json_delta(index: int, piece: str) -> SSEEvent:
    delta = {"type": "input_json_delta", "partial_json": piece}
    return event("content_block_delta", index=index, delta=delta)


def tool_start(index: int, id_: str, name: str) -> SSEEvent:
    block = {"type": "tool_use", "id": id_, "name": name, "input": {}}
    return event("content_block_start", index=index, content_block=block)


def finish(stop_reason: str, output_tokens: int) -> list[SSEEvent]:
    return [
        event(
            "message_delta",
            delta={"stop_reason": stop_reason, "stop_sequence": None},
            usage={"output_tokens": output_tokens},
        ),
        event("message_stop"),
    ]


async def aiter_of(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def translate(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [chunk async for chunk in ADAPTER.chat_stream(aiter_of(events), TARGET)]


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


# --- streams -------------------------------------------------------------------------------


async def test_text_stream():
    chunks = await translate(
        [
            start(cache_read_input_tokens=4),
            event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            event("ping"),
            text_delta(0, "Hello"),
            text_delta(0, " world"),
            event("content_block_stop", index=0),
            *finish("end_turn", 7),
        ]
    )
    assert deltas(chunks) == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": " world"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert {c["id"] for c in chunks} == {"msg_s1"}
    assert len({c["created"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 16
    assert usage_chunk["usage"]["completion_tokens"] == 7
    assert usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"] == 4


async def test_multibyte_character_split_across_network_chunks():
    def raw(ev: SSEEvent) -> bytes:
        return f"event: {ev.event}\ndata: {ev.data}\n\n".encode()

    stream = b"".join(
        raw(e)
        for e in [
            start(),
            event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            text_delta(0, "Grüße 👋🏽"),
            *finish("end_turn", 2),
        ]
    )
    cut = stream.index("👋".encode()) + 2  # inside the four bytes of the emoji
    network = [stream[:cut], stream[cut:]]
    chunks = [c async for c in ADAPTER.chat_stream(decode_sse(aiter_of(network)), TARGET)]
    assert "".join(d.get("content", "") for d in deltas(chunks)) == "Grüße 👋🏽"


async def test_multiple_tool_calls_stream():
    chunks = await translate(
        [
            start(),
            event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            text_delta(0, "Let me check."),
            event("content_block_stop", index=0),
            tool_start(1, "toolu_a", "get_weather"),
            json_delta(1, ""),
            json_delta(1, '{"city": '),
            json_delta(1, '"Paris"}'),
            event("content_block_stop", index=1),
            tool_start(2, "toolu_b", "get_time"),
            json_delta(2, "{}"),
            event("content_block_stop", index=2),
            *finish("tool_use", 30),
        ]
    )
    tool_deltas = [d["tool_calls"][0] for d in deltas(chunks) if "tool_calls" in d]
    assert tool_deltas[0] == {
        "index": 0,
        "id": "toolu_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    calls: dict[int, str] = {}
    for delta in tool_deltas:
        calls[delta["index"]] = calls.get(delta["index"], "") + delta["function"]["arguments"]
    assert json.loads(calls[0]) == {"city": "Paris"} and json.loads(calls[1]) == {}
    assert tool_deltas[-2]["id"] == "toolu_b" and tool_deltas[-2]["index"] == 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_json_tool_stream_is_content():
    chunks = await translate(
        [
            start(),
            tool_start(0, "toolu_j", JSON_TOOL),
            json_delta(0, '{"a":'),
            json_delta(0, "1}"),
            *finish("tool_use", 3),
        ]
    )
    assert "".join(d.get("content", "") for d in deltas(chunks)) == '{"a":1}'
    assert not any("tool_calls" in d for d in deltas(chunks))
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_thinking_deltas_become_reasoning_content():
    chunks = await translate(
        [
            start(),
            event(
                "content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}
            ),
            event(
                "content_block_delta",
                index=0,
                delta={"type": "thinking_delta", "thinking": "Let me think"},
            ),
            event(
                "content_block_delta",
                index=0,
                delta={"type": "signature_delta", "signature": "EqQB"},
            ),
            *finish("max_tokens", 9),
        ]
    )
    signed = {"type": "thinking", "thinking": "Let me think", "signature": "EqQB"}
    assert deltas(chunks)[1:] == [
        {"reasoning_content": "Let me think"},
        {"thinking_blocks": [signed]},  # the whole signed block, once its signature arrived
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


async def test_error_event_mid_stream_raises_classified_error():
    events = [
        start(),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        text_delta(0, "Hi"),
        event("error", error={"type": "overloaded_error", "message": "Overloaded"}),
        text_delta(0, "never"),
    ]
    received = []
    with pytest.raises(UpstreamError) as exc:
        async for chunk in ADAPTER.chat_stream(aiter_of(events), TARGET):
            received.append(chunk)
    assert exc.value.kind is K.OVERLOADED and exc.value.status == 529
    assert deltas(received)[-1] == {"content": "Hi"}


async def test_stream_ending_without_message_stop_is_an_error():
    with pytest.raises(UpstreamError) as exc:
        await translate([start(), text_delta(0, "cut")])
    assert exc.value.kind is K.BAD_RESPONSE
