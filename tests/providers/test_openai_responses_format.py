"""The Responses API as a provider format: the mock's answers and event streams read into
chat form (what the native lane meters, guards and caches), and the round trip through the
Responses dialect that a multi-turn client makes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from perpetuo.api.dialects.openai_responses.request import decode
from perpetuo.api.dialects.openai_responses.response import encode
from perpetuo.providers.base import Target
from perpetuo.providers.openai_responses import ResponsesStreamToChat, to_chat
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import Usage
from perpetuo.transport.sse import decode_sse
from perpetuo.transport.url import URL
from tests.mocks.openai_mock import OpenAIMock

K = UpstreamErrorKind
TARGET = Target("oa", "openai", "gpt-5", URL.parse("https://api.example/v1"), "sk-test-openai")
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
REASONED = {"reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"]}  # fmt: skip


@pytest.fixture(scope="module")
def mock() -> Iterator[OpenAIMock]:
    upstream = OpenAIMock().start()
    yield upstream
    upstream.stop()


def post(mock: OpenAIMock, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{mock.url}/v1/responses",
        json={"model": "gpt-5", **body},
        headers={"authorization": "Bearer sk-test-openai"},
        timeout=10,
    )


async def reads(raw: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(raw), 7):  # small reads: events cut across them
        yield raw[i : i + 7]


async def chunks_of(mock: OpenAIMock, **body: Any) -> tuple[list[dict[str, Any]], bool]:
    """The chat chunks of a streamed answer, and whether the stream reached its end. As on
    the native lane, only the events the translator wants are decoded."""
    raw = post(mock, stream=True, **body).content
    translator = ResponsesStreamToChat(TARGET)
    chunks = []
    async for event in decode_sse(reads(raw)):
        if translator.wants(event.event):
            chunks += translator.feed(json.loads(event.data))
    return chunks, translator.finished


def assembled(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {}
    calls: dict[int, dict[str, Any]] = {}
    out: dict[str, Any] = {"message": message}
    for chunk in chunks:
        if not chunk["choices"]:
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            for key in ("content", "reasoning_content", "refusal"):
                if delta.get(key):
                    message[key] = message.get(key, "") + delta[key]
            if delta.get("thinking_blocks"):
                message.setdefault("thinking_blocks", []).extend(delta["thinking_blocks"])
            for piece in delta.get("tool_calls") or []:
                entry = calls.setdefault(piece["index"], {"arguments": ""})
                entry.update({k: piece[k] for k in ("id",) if k in piece})
                entry["name"] = piece["function"].get("name") or entry.get("name")
                entry["arguments"] += piece["function"].get("arguments") or ""
            out["finish"] = choice["finish_reason"] or out.get("finish")
    out["calls"] = [calls[i] for i in sorted(calls)]
    return out


# --- complete responses --------------------------------------------------------------------


def test_text_answer_and_usage(mock):
    chat = to_chat(post(mock, input="hello trigger cache hit", **REASONED).content, TARGET)
    assert chat["object"] == "chat.completion" and chat["id"].startswith("resp_")
    (choice,) = chat["choices"]
    assert choice["message"]["content"] == "Echo: hello trigger cache hit"
    assert choice["finish_reason"] == "stop"
    usage = Usage.from_openai(chat["usage"])
    assert usage.reasoning_tokens == 8 and usage.cached_tokens > 0
    assert usage.prompt_tokens >= usage.cached_tokens  # cached tokens are inside the prompt


def test_reasoning_items_become_thinking_blocks_verbatim(mock):
    answer = post(mock, input="why", **REASONED).json()
    message = to_chat(json.dumps(answer).encode(), TARGET)["choices"][0]["message"]
    (item,) = [i for i in answer["output"] if i["type"] == "reasoning"]
    assert message["thinking_blocks"] == [item]
    assert item["encrypted_content"].startswith("gAAAA")
    assert message["reasoning_content"] == "Thinking about: why"


def test_parallel_function_calls_keep_their_call_ids(mock):
    tools = [WEATHER, {**WEATHER, "name": "get_time"}]
    chat = to_chat(post(mock, input="use all tools", tools=tools).content, TARGET)
    choice = chat["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [(c["id"], c["function"]["name"]) for c in choice["message"]["tool_calls"]] == [
        ("call_1_get_weather", "get_weather"),
        ("call_2_get_time", "get_time"),
    ]
    assert choice["message"]["content"] is None


def test_max_output_tokens_finishes_with_length(mock):
    chat = to_chat(post(mock, input="one two three four five", max_output_tokens=2).content, TARGET)
    assert chat["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": "rate_limit_exceeded", "message": "Slow down"}, K.RATE_LIMIT),
        ({"code": "server_error", "message": "Oops"}, K.SERVER),
        ({"code": "invalid_prompt", "message": "Flagged"}, K.CONTENT_POLICY),
        ({"code": "invalid_image_url", "message": "Bad image"}, K.INVALID_REQUEST),
    ],
)
def test_failed_response_raises_classified(error, kind):
    body = {"id": "resp_1", "object": "response", "status": "failed", "error": error, "output": []}
    with pytest.raises(UpstreamError) as caught:
        to_chat(json.dumps(body).encode(), TARGET)
    assert caught.value.kind is kind and caught.value.code == error["code"]


def test_upstream_usage_numbers_are_clamped():
    body = {
        "id": "resp_1", "object": "response", "status": "completed", "created_at": 1,
        "output": [{"type": "message", "id": "m", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "ok", "annotations": []}]}],
        "usage": {"input_tokens": -5, "output_tokens": 10**12, "total_tokens": 3,
                  "input_tokens_details": {"cached_tokens": -1},
                  "output_tokens_details": {"reasoning_tokens": 2}},
    }  # fmt: skip
    usage = to_chat(json.dumps(body).encode(), TARGET)["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (0, 100_000_000)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0


# --- streams -------------------------------------------------------------------------------


async def test_stream_agrees_with_the_complete_answer(mock):
    body = {"input": "tell me", **REASONED}
    chunks, finished = await chunks_of(mock, **body)
    whole = to_chat(post(mock, **body).content, TARGET)["choices"][0]
    streamed = assembled(chunks)
    assert finished and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert streamed["message"]["content"] == whole["message"]["content"] == "Echo: tell me"
    assert streamed["message"]["reasoning_content"] == whole["message"]["reasoning_content"]
    (block,) = streamed["message"]["thinking_blocks"]
    assert block["encrypted_content"].startswith("gAAAA")
    assert streamed["finish"] == "stop"
    assert chunks[-1]["choices"] == [] and streamed["usage"]["completion_tokens_details"][
        "reasoning_tokens"] == 8  # fmt: skip


async def test_streamed_parallel_calls_have_stable_indexes(mock):
    chunks, _ = await chunks_of(mock, input="all tools", tools=[WEATHER, {**WEATHER, "name": "t2"}])
    streamed = assembled(chunks)
    assert [(c["id"], c["name"]) for c in streamed["calls"]] == [
        ("call_1_get_weather", "get_weather"),
        ("call_2_t2", "t2"),
    ]
    assert json.loads(streamed["calls"][0]["arguments"]) == {"city": "all tools"}
    assert streamed["finish"] == "tool_calls"


async def test_incomplete_stream_finishes_with_length(mock):
    chunks, finished = await chunks_of(mock, input="a b c d e", max_output_tokens=2)
    assert finished and assembled(chunks)["finish"] == "length"


async def test_mid_stream_failure_raises_instead_of_ending(mock):
    with pytest.raises(UpstreamError) as caught:
        await chunks_of(mock, input="trigger stream error please")
    assert caught.value.kind is K.SERVER


@pytest.mark.parametrize(
    "body",
    [{"input": "tell me", **REASONED}, {"input": "a b c d e", "max_output_tokens": 2}],
)
async def test_events_left_undecoded_would_make_no_chunks(mock, body):
    """The native lane skips decoding the events `wants` refuses by name: each of them,
    decoded anyway, makes nothing."""
    raw = post(mock, stream=True, **body).content
    translator, skipped = ResponsesStreamToChat(TARGET), []
    async for event in decode_sse(reads(raw)):
        made = translator.feed(json.loads(event.data))
        if not translator.wants(event.event):
            skipped.append(event.event)
            assert made == [], event.event
    assert "response.output_text.done" in skipped or "response.content_part.done" in skipped
    assert translator.finished


def test_arguments_sent_only_whole_still_arrive():
    translator = ResponsesStreamToChat(TARGET)
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
            "arguments": "", "status": "in_progress"}  # fmt: skip
    out = translator.feed({"type": "response.output_item.added", "output_index": 0, "item": item})
    out += translator.feed({"type": "response.function_call_arguments.delta", "output_index": 0,
                            "item_id": "fc_1", "delta": '{"a":'})  # fmt: skip
    done = {**item, "arguments": '{"a":1}', "status": "completed"}
    out += translator.feed({"type": "response.output_item.done", "output_index": 0, "item": done})
    assert assembled(out)["calls"] == [{"id": "call_1", "name": "f", "arguments": '{"a":1}'}]


def test_response_failed_event_is_classified():
    translator = ResponsesStreamToChat(TARGET)
    failed = {"type": "response.failed", "response": {"id": "r", "status": "failed", "error": {
        "code": "rate_limit_exceeded", "message": "Too many"}}}  # fmt: skip
    with pytest.raises(UpstreamError) as caught:
        translator.feed(failed)
    assert caught.value.kind is K.RATE_LIMIT and not translator.finished


# --- the multi-turn round trip ---------------------------------------------------------------


def test_round_trip_keeps_text_call_ids_and_encrypted_reasoning(mock):
    """Upstream answer -> chat form -> Responses object for the client -> the client's next
    request -> chat form: the call id and encrypted reasoning survive, and the upstream
    accepts the replayed reasoning (it checks the seal)."""
    first = post(mock, input="weather?", tools=[WEATHER], store=False, **REASONED)
    chat = to_chat(first.content, TARGET)
    request = decode(json.dumps({"model": "gpt-5", "input": "weather?"}).encode())
    answer = encode(chat, Usage.from_openai(chat["usage"]), model="gpt-5", request=request)
    openai.types.responses.Response.model_validate(answer)
    follow_up = [
        {"role": "user", "content": "weather?"},
        *answer["output"],
        {"type": "function_call_output", "call_id": "call_1_get_weather", "output": "sunny"},
    ]
    turn = decode(json.dumps({"model": "gpt-5", "input": follow_up}).encode()).chat.messages[1]
    assert turn.tool_calls[0].id == "call_1_get_weather"
    original = [i for i in first.json()["output"] if i["type"] == "reasoning"]
    assert turn.thinking_blocks == original  # verbatim, encrypted_content included
    replay = post(mock, input=follow_up, tools=[WEATHER], store=False, **REASONED)
    assert replay.status_code == 200
    assert to_chat(replay.content, TARGET)["choices"][0]["message"]["content"] == (
        "The tool returned: sunny"
    )
    forged = [{**follow_up[1], "encrypted_content": "gAAAAforged.0"}, *follow_up[2:]]
    assert post(mock, input=forged, tools=[WEATHER]).json()["error"]["code"] == (
        "invalid_encrypted_content"
    )


def test_the_mock_is_what_the_sdk_expects(mock):
    """The reference the tests lean on: the SDK reads the mock's answers and streams."""
    client = openai.OpenAI(base_url=f"{mock.url}/v1", api_key="sk-test-openai", max_retries=0)
    first = client.responses.create(model="gpt-5", input="hi", **REASONED)
    assert first.output_text == "Echo: hi"
    with client.responses.stream(model="gpt-5", input="again", previous_response_id=first.id,
                                 **REASONED) as stream:  # fmt: skip
        final = stream.get_final_response()
    assert final.output_text == "Echo: again"
    items = client.responses.input_items.list(final.id, order="asc")
    assert [i.type for i in items] == ["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-5", input="x", previous_response_id="resp_nope")
    assert caught.value.code == "previous_response_not_found"
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
