"""The Anthropic adapter as plain functions: requests, responses, streams and errors."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from perpetuo.providers.anthropic import AnthropicAdapter
from perpetuo.providers.anthropic.request import DROPPED, JSON_TOOL, MAPPED, UNSUPPORTED
from perpetuo.providers.base import Target
from perpetuo.schema.chat import CHAT_REQUEST_FIELDS, ChatCompletionRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.url import URL

ADAPTER = AnthropicAdapter()
TARGET = Target("anth", "anthropic", "claude-x", URL.parse("https://api.example"), "sk-ant-k1")
K = UpstreamErrorKind
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def body_for(extras: dict[str, Any] | None = None, target: Target = TARGET, **fields: Any) -> Any:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    request = msgspec.convert({"model": "claude", **fields}, ChatCompletionRequest)
    call = ADAPTER.chat_request(request, target, extras or {})
    return msgspec.json.decode(call.body)


def unsupported_param(**fields: Any) -> str | None:
    with pytest.raises(UpstreamError) as exc:
        body_for(**fields)
    assert exc.value.kind is K.UNSUPPORTED and exc.value.status == 400
    return exc.value.param


# --- requests ------------------------------------------------------------------------------


def test_url_headers_and_defaults():
    call = ADAPTER.chat_request(
        msgspec.convert(
            {"model": "m", "messages": [{"role": "user", "content": "x"}]}, ChatCompletionRequest
        ),
        TARGET,
        {},
    )
    assert str(call.url) == "https://api.example/v1/messages"
    headers = dict(call.headers)
    assert headers["x-api-key"] == "sk-ant-k1"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    body = msgspec.json.decode(call.body)
    assert body == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
    }


def test_v1_base_version_and_extra_headers():
    target = Target(
        "anth",
        "anthropic",
        "m",
        URL.parse("http://proxy:8080/anthropic/v1/"),
        None,
        api_version="2024-01-01",
        headers=(("anthropic-beta", "tools-2024"),),
    )
    request = msgspec.convert(
        {"model": "m", "messages": [{"role": "user", "content": "x"}]}, ChatCompletionRequest
    )
    call = ADAPTER.chat_request(request, target, {})
    assert str(call.url) == "http://proxy:8080/anthropic/v1/messages"
    headers = dict(call.headers)
    assert headers["anthropic-version"] == "2024-01-01"
    assert headers["anthropic-beta"] == "tools-2024"
    assert "x-api-key" not in headers


def test_system_and_developer_messages_join_into_system():
    body = body_for(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        ]
    )
    assert body["system"] == "Be brief.\n\nUse French."
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_consecutive_roles_merge_and_empty_assistant_is_skipped():
    body = body_for(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": None},
            {"role": "user", "content": "three"},
            {"role": "assistant", "content": "Sure "},
            {"role": "assistant", "content": [{"type": "text", "text": "thing  "}]},
        ]
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "one"},
                {"type": "text", "text": "two"},
                {"type": "text", "text": "three"},
            ],
        },
        # The final assistant turn is a prefill: trailing whitespace is trimmed.
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Sure "}, {"type": "text", "text": "thing"}],
        },
    ]


def test_tool_calls_and_results():
    body = body_for(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "9"}]},
            {"role": "user", "content": "thanks"},
        ]
    )
    assistant, results = body["messages"][1], body["messages"][2]
    assert assistant["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
    ]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "9"},
            {"type": "text", "text": "thanks"},
        ],
    }


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_must_be_a_json_object(arguments):
    param = unsupported_param(
        messages=[
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "t",
                        "type": "function",
                        "function": {"name": "f", "arguments": arguments},
                    }
                ],
            },
        ]
    )
    assert param == "messages[1].tool_calls[0].function.arguments"


def test_images_data_and_url():
    body = body_for(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://img.example/cat.jpg", "detail": "high"},
                    },
                ],
            }
        ]
    )
    assert body["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://img.example/cat.jpg"}},
    ]


def test_sampling_and_limits():
    body = body_for(
        temperature=1.7,
        top_p=0.9,
        stop="END",
        max_tokens=20,
        user="u-1",
        seed=3,
        frequency_penalty=1,
        presence_penalty=1,
        logit_bias={"1": 2},
        store=True,
        metadata={"k": "v"},
        service_tier="auto",
        prompt_cache_key="c",
        n=1,
        logprobs=False,
    )
    assert body["temperature"] == 1.0  # clamped to Anthropic's maximum
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["max_tokens"] == 20
    assert body["metadata"] == {"user_id": "u-1"}
    for dropped in ("seed", "frequency_penalty", "presence_penalty", "logit_bias", "store", "n"):
        assert dropped not in body
    assert body_for(temperature=0.3, stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert body_for(temperature=0.3)["temperature"] == 0.3
    assert body_for(max_tokens=20, max_completion_tokens=30)["max_tokens"] == 30


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"tools": [{"type": "custom", "custom": {"name": "c"}}]}, "tools"),
        ({"tool_choice": {"type": "allowed_tools"}, "tools": [TOOL]}, "tool_choice"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
    ],
)
def test_unsupported_parameters(fields, param):
    assert unsupported_param(**fields) == param


def test_every_openai_field_is_mapped_dropped_or_refused():
    decided = MAPPED | DROPPED | set(UNSUPPORTED)
    assert set(CHAT_REQUEST_FIELDS) - decided == set()


def test_tools_and_tool_choice_variants():
    body = body_for(tools=[TOOL, {"type": "function", "function": {"name": "bare"}}])
    assert body["tools"] == [
        {"name": "get_weather", "input_schema": {"type": "object"}},
        {"name": "bare", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body
    choices = {
        "auto": {"type": "auto"},
        "required": {"type": "any"},
        "none": {"type": "none"},
    }
    for openai_choice, expected in choices.items():
        assert body_for(tools=[TOOL], tool_choice=openai_choice)["tool_choice"] == expected
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert body_for(tools=[TOOL], tool_choice=named)["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
    }
    serial = body_for(tools=[TOOL], parallel_tool_calls=False)
    assert serial["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "tools" not in body_for(tool_choice="auto")  # no tools: nothing to choose from


def test_response_format_json_schema_is_a_forced_tool():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = body_for(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        }
    )
    assert body["tools"] == [
        {"name": JSON_TOOL, "description": body["tools"][0]["description"], "input_schema": schema}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    json_object = body_for(response_format={"type": "json_object"})
    assert json_object["tools"][0]["input_schema"] == {"type": "object"}
    assert "tools" not in body_for(response_format={"type": "text"})


def test_response_format_with_client_tools_requires_some_tool():
    body = body_for(tools=[TOOL], response_format={"type": "json_object"})
    assert [t["name"] for t in body["tools"]] == ["get_weather", JSON_TOOL]
    assert body["tool_choice"] == {"type": "any"}
    only_json = body_for(tools=[TOOL], tool_choice="none", response_format={"type": "json_object"})
    assert [t["name"] for t in only_json["tools"]] == [JSON_TOOL]
    with pytest.raises(UpstreamError) as exc:
        body_for(
            extras={"thinking": {"type": "enabled", "budget_tokens": 2048}},
            response_format={"type": "json_object"},
        )
    assert exc.value.param == "response_format"
    reserved = {"type": "function", "function": {"name": JSON_TOOL}}
    assert unsupported_param(tools=[reserved]) == "tools"


def test_extras_and_stream_flag():
    body = body_for(
        extras={"top_k": 5, "thinking": {"type": "disabled"}},
        stream=True,
        stream_options={"include_usage": True},
    )
    assert body["top_k"] == 5 and body["thinking"] == {"type": "disabled"}
    assert body["stream"] is True and "stream_options" not in body
