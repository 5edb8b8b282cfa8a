"""The official openai SDK against the gateway, through an Anthropic (Messages API) upstream."""

from __future__ import annotations

import json

import openai
import pytest

from tests.mocks.server import Fault, MockUpstream
from tests.support.gateway import MASTER_KEY

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["location"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}
USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def anthropic_mock(mocks: dict[str, MockUpstream]) -> MockUpstream:
    return mocks["anthropic"]


def test_chat_round_trip_and_what_upstream_received(client, anthropic_mock):
    raw = client.chat.completions.with_raw_response.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
        temperature=1.5,
        seed=7,
        user="user-42",
    )
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.message.content == "Echo: hello there"
    assert choice.finish_reason == "stop"
    assert completion.id.startswith("msg_")
    assert completion.usage.completion_tokens == 3
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 3
    assert raw.headers["x-perpetuo-provider"] == "anthropic-main"
    sent = anthropic_mock.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in sent.headers
    assert not any(MASTER_KEY in value for value in sent.headers.values())
    body = sent.body
    assert body["model"] == "claude-3-5-haiku-latest"
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 4096
    assert body["temperature"] == 1.0
    assert body["metadata"] == {"user_id": "user-42"}
    assert "seed" not in body


def test_stream_without_usage_requested(client, anthropic_mock):
    stream = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "stream me please"}], stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: stream me please"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert anthropic_mock.last.body["stream"] is True


def test_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "count me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 3  # "Echo: count me"
    assert chunks[-1].usage.prompt_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_prompt_cache_usage(client):
    completion = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "trigger cache hit"}]
    )
    usage = completion.usage
    assert usage.prompt_tokens_details.cached_tokens == 10
    # input_tokens (3 words + 3) plus 10 read from and 2 written to the cache
    assert usage.prompt_tokens == 6 + 10 + 2


def test_tool_call_and_tool_result_follow_up(client, anthropic_mock):
    completion = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.id.startswith("toolu_")
    assert json.loads(call.function.arguments) == {"location": "weather in Paris?", "unit": "c"}
    sent = anthropic_mock.last.body
    assert sent["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    assert sent["tool_choice"] == {"type": "auto"}

    follow_up = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content == "The tool returned: 18C and sunny"
    turns = anthropic_mock.last.body["messages"]
    assert turns[1]["content"][0]["type"] == "tool_use"
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": call.id, "content": "18C and sunny"}
    ]


def test_streamed_parallel_tool_calls(client):
    stream = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "use all tools"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                entry["name"] = delta.function.name or entry["name"]
                entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"])["location"] == "use all tools"
    assert json.loads(calls[1]["arguments"]) == {}


def test_parallel_tool_results_and_consecutive_users_are_merged(client, anthropic_mock):
    first = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "use all tools"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
    )
    message = first.choices[0].message
    results = [
        {"role": "tool", "tool_call_id": call.id, "content": f"result {i}"}
        for i, call in enumerate(message.tool_calls)
    ]
    follow_up = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "user", "content": "first part"},
            {"role": "user", "content": "use all tools"},
            message.model_dump(exclude_none=True),
            *results,
        ],
        tools=[WEATHER_TOOL, TIME_TOOL],
    )
    assert follow_up.choices[0].message.content == "The tool returned: result 0 result 1"
    turns = anthropic_mock.last.body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in turns[2]["content"]] == [c.id for c in message.tool_calls]


def test_forced_tool_without_parallel_calls(client, anthropic_mock):
    completion = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "what time is it"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False,
    )
    assert completion.choices[0].message.tool_calls[0].function.name == "get_time"
    assert anthropic_mock.last.body["tool_choice"] == {
        "type": "tool",
        "name": "get_time",
        "disable_parallel_tool_use": True,
    }


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}


def test_json_schema_response_format(client, anthropic_mock):
    completion = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Lyon"}],
        response_format=JSON_SCHEMA_FORMAT,
    )
    assert json.loads(completion.choices[0].message.content) == {"city": "Lyon", "population": 1}
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls is None
    sent = anthropic_mock.last.body
    assert sent["tools"][0]["input_schema"] == SCHEMA
    assert sent["tool_choice"]["type"] == "tool"


def test_json_schema_streamed_and_json_object(client):
    stream = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Nice"}],
        response_format=JSON_SCHEMA_FORMAT,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert json.loads(text) == {"city": "Nice", "population": 1}
    completion = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "reply in json"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(completion.choices[0].message.content) == {"echo": "reply in json"}


def test_images_data_and_url(client, anthropic_mock):
    completion = client.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://img.example/a.jpg"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "Echo: describe [2 image(s)]"
    sources = [b["source"] for b in anthropic_mock.last.body["messages"][0]["content"][1:]]
    assert sources == [
        {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
        {"type": "url", "url": "https://img.example/a.jpg"},
    ]


def test_max_tokens_and_stop_sequences(client, anthropic_mock):
    cut = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "one two three four"}], max_tokens=2
    )
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "Echo: one"
    assert anthropic_mock.last.body["max_tokens"] == 2
    stopped = client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "one two three"}], stop=["two"]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == "Echo: one "
    assert anthropic_mock.last.body["stop_sequences"] == ["two"]


def test_context_overflow_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "trigger context overflow"}]
        )
    assert exc.value.code == "context_length_exceeded"
    assert "prompt is too long" in exc.value.message


def test_overloaded_is_service_unavailable(client):
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "trigger overloaded"}]
        )
    assert exc.value.status_code == 503
    assert exc.value.code == "upstream_unavailable"


def test_overloaded_deployment_falls_over_to_the_next(client, anthropic_mock):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    anthropic_mock.fail_next(Fault(status=529, body=overloaded))
    raw = client.chat.completions.with_raw_response.create(model="claude-fallback", messages=USER)
    assert raw.parse().choices[0].message.content == "Echo: hello there"
    assert raw.headers["x-perpetuo-attempts"] == "2"
    models = [r.body["model"] for r in anthropic_mock.requests]
    assert models == ["claude-3-5-haiku-latest", "claude-3-5-sonnet-latest"]


def test_rate_limit_passes_retry_after(client, anthropic_mock):
    limited = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    anthropic_mock.fail_next(Fault(status=429, body=limited, headers={"retry-after": "9"}))
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="claude", messages=USER)
    assert exc.value.response.headers["retry-after"] == "9"


def test_mid_stream_error_after_first_chunks(client):
    stream = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "trigger stream error please"}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received) == "Echo:"
    assert "unavailable" in exc.value.message.lower()


def test_unsupported_parameter_is_a_clear_bad_request(client, anthropic_mock):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="claude", messages=USER, n=2)
    assert exc.value.code == "unsupported_parameter"
    assert exc.value.param == "n"
    assert anthropic_mock.requests == []  # refused before anything was sent


def test_extra_params_and_v1_api_base(client, anthropic_mock):
    client.chat.completions.create(model="claude-extras", messages=USER, extra_body={"top_k": 5})
    assert anthropic_mock.last.body["top_k"] == 5
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="claude", messages=USER, extra_body={"top_k": 5})
    assert exc.value.param == "top_k"
    client.chat.completions.create(model="claude-v1-base", messages=USER)
    assert anthropic_mock.last.path == "/v1/messages"


async def test_async_client_chat_and_unicode_stream(async_client):
    completion = await async_client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "async hi"}]
    )
    assert completion.choices[0].message.content == "Echo: async hi"
    stream = await async_client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "unicode please"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.startswith("Grüße aus Köln") and "👋🏽" in text
