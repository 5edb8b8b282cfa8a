"""The Messages dialect's codecs as plain functions: request -> chat form, chat answer ->
Message, errors -> Anthropic's shape, and the count_tokens estimate. Encoded objects are
checked against the official anthropic SDK's own types."""

from __future__ import annotations

import json
import logging
from typing import Any

import anthropic.types as at
import msgspec
import pytest
from anthropic.types.shared import ErrorResponse
from msgspec import UNSET

from perpetuo.api.dialects.anthropic_messages import errors, request, response, tokens
from perpetuo.schema.chat import (
    AssistantMessage,
    FilePart,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from perpetuo.schema.errors import ErrorType, GatewayError, bad_request, model_not_found
from perpetuo.schema.usage import Usage

PDF = "JVBERi0xLjQK"
PNG = "iVBORw0KGgo="
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"city": {"type": "string", "minLength": 1}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
SIGNED = {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQBCgIYAh"}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}


def body(**fields: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hello"}],
        **fields,
    }


def decode(data: dict[str, Any]):
    return request.decode(json.dumps(data).encode())


def refused(data: dict[str, Any] | bytes) -> GatewayError:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(GatewayError) as caught:
        request.decode(raw)
    error = caught.value
    assert error.status == 400 and error.type is ErrorType.INVALID_REQUEST
    return error


# --- requests: content ---------------------------------------------------------------------


def test_user_blocks_become_chat_parts():
    content = [
        {"type": "text", "text": "Look:", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://img.example/a.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
        },
        {
            "type": "document",
            "source": {"type": "content", "content": [{"type": "text", "text": "c"}]},
        },
    ]
    decoded = decode(body(messages=[{"role": "user", "content": content}]))
    [message] = decoded.chat.messages
    assert isinstance(message, UserMessage)
    text, png, url, pdf, notes, inner = message.content
    assert text == TextPart("Look:")
    assert isinstance(png, ImagePart) and png.image_url.url == f"data:image/png;base64,{PNG}"
    assert isinstance(url, ImagePart) and url.image_url.url == "https://img.example/a.jpg"
    assert isinstance(pdf, FilePart) and pdf.file.file_data == f"data:application/pdf;base64,{PDF}"
    assert notes == TextPart("notes") and inner == TextPart("c")
    assert decoded.native_only == []


def test_assistant_turn_keeps_tool_ids_and_signed_thinking_verbatim():
    assistant = [
        SIGNED,
        REDACTED,
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Köln"}},
        {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {}},
    ]
    results = [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "sunny"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_01B",
            "content": [{"type": "text", "text": "no city"}],
            "is_error": True,
        },
        {"type": "text", "text": "And tomorrow?"},
    ]
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": results},
    ]
    chat = decode(body(messages=messages, tools=[WEATHER])).chat
    _, turn, first, second, follow_up = chat.messages
    assert isinstance(turn, AssistantMessage)
    assert turn.content == "Checking."
    assert [(c.id, c.function.name) for c in turn.tool_calls] == [
        ("toolu_01A", "get_weather"),
        ("toolu_01B", "get_weather"),
    ]
    assert json.loads(turn.tool_calls[0].function.arguments) == {"city": "Köln"}
    assert turn.thinking_blocks == [SIGNED, REDACTED]
    assert turn.reasoning_content == SIGNED["thinking"]
    # Tool results answer by id, in place, before the user's follow-up.
    assert first == ToolMessage(content="sunny", tool_call_id="toolu_01A")
    assert isinstance(second, ToolMessage) and second.tool_call_id == "toolu_01B"
    assert second.content == "Error: no city"  # chat form has no is_error: said in the text
    assert follow_up == UserMessage(content=[TextPart("And tomorrow?")])


def test_system_prompt_and_a_system_turn_in_the_middle():
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Answer in French."},
        {"role": "assistant", "content": None},
    ]
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    chat = decode(body(system=system, messages=messages)).chat
    assert chat.messages == [
        SystemMessage(content=[TextPart("Be brief.")]),
        UserMessage(content="hi"),
        SystemMessage(content="Answer in French."),
    ]


def test_what_chat_form_cannot_say_is_listed_as_native_only():
    content = [
        {"type": "text", "text": "see"},
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "document", "source": {"type": "url", "url": "https://x.example/a.pdf"}},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "d"},
            "citations": {"enabled": True},
        },
        {"type": "search_result", "source": "s", "title": "t", "content": []},
    ]
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    history = [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}},
    ]
    messages = [
        {"role": "user", "content": content},
        {"role": "assistant", "content": history},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [image]}],
        },
    ]
    tools = [
        WEATHER,
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    ]
    decoded = decode(
        body(
            messages=messages,
            tools=tools,
            stop_sequences=["a", "b", "c", "d", "e"],
            mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "m"}],
        )
    )
    assert decoded.native_only == [
        "messages[0].content[1] (image from a file id)",
        "messages[0].content[2] (document from a URL)",
        "messages[0].content[3].citations (document citations)",
        "messages[0].content[4] (search_result)",
        "messages[1].content[0] (server_tool_use)",
        "messages[1].content[1] (web_search_tool_result)",
        "messages[2].content[0].content[0] (image in a tool_result)",
        "tools[1] (web_search_20250305)",
        "tools[2] (bash_20250124)",
        "tools[3] (text_editor_20250728)",
        "stop_sequences (more than 4)",
        "mcp_servers (MCP connector)",
    ]
    # The chat form keeps what it can say, and the client's body is kept whole.
    assert [t.function.name for t in decoded.chat.tools] == ["get_weather"]
    assert decoded.chat.stop is UNSET
    assert decoded.raw["stop_sequences"] == ["a", "b", "c", "d", "e"]


# --- requests: parameters ------------------------------------------------------------------


def test_parameters_map_to_chat_form_and_the_body_stays_whole():
    data = body(
        tools=[WEATHER],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        stop_sequences=["END"],
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        metadata={"user_id": "user-7"},
        stream=True,
        service_tier="auto",
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
        context_management={"edits": [{"type": "clear_tool_uses_20250919"}]},
        container="container_1",
    )
    decoded = decode(data)
    chat = decoded.chat
    assert decoded.raw == data
    assert decoded.native_only == []
    [tool] = chat.tools
    assert tool.function.parameters == WEATHER["input_schema"]  # $schema and all keywords
    assert tool.function.description == "Weather for a city"
    assert chat.tool_choice == "auto" and chat.parallel_tool_calls is False
    assert chat.stop == ["END"] and chat.temperature == 0.2 and chat.top_p == 0.9
    assert chat.user == "user-7" and chat.max_tokens == 1024
    assert chat.is_stream and chat.wants_stream_usage
    assert chat.response_format.json_schema.schema == {"type": "object"}
    assert chat.service_tier is UNSET  # Anthropic's tiers are not OpenAI's


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(choice, expected):
    chat = decode(body(tools=[WEATHER], tool_choice=choice)).chat
    assert chat.tool_choice == expected and chat.parallel_tool_calls is UNSET


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 4095}, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, "medium"),
        ({"type": "enabled", "budget_tokens": 16383}, "medium"),
        ({"type": "enabled", "budget_tokens": 16384}, "high"),
        ({"type": "disabled"}, UNSET),
        ({"type": "adaptive"}, UNSET),
        ({"type": "between_tools"}, UNSET),  # a kind newer than the gateway: accepted
    ],
)
def test_thinking_budget_sets_reasoning_effort(thinking, effort):
    assert decode(body(max_tokens=32000, thinking=thinking)).chat.reasoning_effort == effort


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"model": None}, "model"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "100"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 10**9}, "max_tokens"),  # past what chat form allows
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0]"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/tiff",
                                    "data": PNG,
                                },
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].source.media_type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}]},
                ]
            },
            "messages[1].content[0].signature",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "n", "input": "{}"}],
                    },
                ]
            },
            "messages[1].content[0].input",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]},
            "messages[0].content[0].tool_use_id",
        ),
        ({"system": 5}, "system"),
        ({"tools": [{**WEATHER, "name": "get weather"}]}, "tools[0].name"),
        ({"tools": [{**WEATHER, "name": "x" * 65}]}, "tools[0].name"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.type"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice.name"),
        ({"thinking": {"type": "enabled", "budget_tokens": 500}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "max_tokens"),
        ({"thinking": "on"}, "thinking.type"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"top_k": 2.5}, "top_k"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"metadata": {"user_id": "u", "session": "s"}}, "metadata.session"),
        ({"stream": "yes"}, "stream"),
        ({"output_config": {"format": {"type": "regex"}}}, "output_config.format.type"),
    ],
)
def test_invalid_requests_are_400_naming_the_field(change, param):
    data = body(**change)
    data = {k: v for k, v in data.items() if v is not None}
    assert refused(data).param == param


def test_undecodable_bodies_are_400_invalid_json():
    assert refused(b"{not json").code == "invalid_json"
    assert refused(b'["a"]').code == "invalid_json"
    assert refused(b'{"model": "\xff"}').code == "invalid_json"


def test_count_tokens_bodies_need_no_max_tokens_and_the_estimate_grows_with_the_prompt():
    short = request.decode_count_tokens(
        b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    )
    assert short.chat.max_tokens is UNSET and tokens.estimate_input_tokens(short) >= 1
    long = {"model": "m", "messages": [{"role": "user", "content": "word " * 400}]}
    with_tools = {**long, "tools": [WEATHER]}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    with_image = {"model": "m", "messages": [{"role": "user", "content": [image]}]}
    counts = [
        tokens.estimate_input_tokens(request.decode_count_tokens(json.dumps(d).encode()))
        for d in (long, with_tools, with_image)
    ]
    assert counts[0] > 400 and counts[1] > counts[0]
    assert counts[2] >= tokens.IMAGE_TOKENS
    with pytest.raises(GatewayError):
        request.decode_count_tokens(b'{"model":"m"}')


# --- responses -----------------------------------------------------------------------------

REQUEST = decode(body(stop_sequences=["END"]))


def chat_body(
    message: dict[str, Any], finish: str | None = "stop", **choice: Any
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish,
                **choice,
            }
        ],
    }


def encode(
    message: dict[str, Any], finish: str | None = "stop", usage: Usage | None = None, **choice: Any
) -> dict[str, Any]:
    out = response.encode(
        chat_body(message, finish, **choice),
        usage or Usage(10, 5),
        model="claude-sonnet",
        request=REQUEST,
    )
    at.Message.model_validate(out)  # the SDK reads it as a Message
    return out


def test_text_answer_is_an_anthropic_message():
    out = encode({"content": "Hello!"})
    assert out["type"] == "message" and out["role"] == "assistant"
    assert out["model"] == "claude-sonnet"
    assert out["content"] == [{"type": "text", "text": "Hello!"}]
    assert out["stop_reason"] == "end_turn" and out["stop_sequence"] is None
    assert out["id"].startswith("msg_") and len(out["id"]) > 20
    kept = response.encode(
        {**chat_body({"content": "x"}), "id": "msg_abc"}, Usage(), model="m", request=REQUEST
    )
    assert kept["id"] == "msg_abc"


def test_content_order_thinking_text_tools_and_only_signed_thinking():
    openai_reasoning = {"type": "reasoning", "id": "rs_1", "encrypted_content": "x", "summary": []}
    calls = [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]
    message = {
        "content": "Let me check.",
        "reasoning_content": "The user wants weather.",
        "thinking_blocks": [openai_reasoning, SIGNED, REDACTED],
        "tool_calls": calls,
    }
    out = encode(message, "tool_calls")
    assert out["content"] == [
        SIGNED,
        REDACTED,
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
    ]
    assert out["stop_reason"] == "tool_use"
    # Reasoning without a signature could not be sent back to Anthropic: left out.
    unsigned = encode(
        {"content": "Hi", "reasoning_content": "thoughts", "thinking_blocks": [openai_reasoning]}
    )
    assert [block["type"] for block in unsigned["content"]] == ["text"]


@pytest.mark.parametrize(
    ("finish", "tools", "reason"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("stop", True, "tool_use"),  # providers that say "stop" after calling tools
        ("tool_calls", False, "end_turn"),
        ("content_filter", False, "refusal"),
        ("length", True, "max_tokens"),
        ("something_new", False, "end_turn"),
        (None, False, "end_turn"),
    ],
)
def test_stop_reasons(finish, tools, reason):
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    message = {"content": "x", "tool_calls": [call] if tools else None}
    assert encode(message, finish)["stop_reason"] == reason


def test_stop_sequence_when_the_provider_says_which_one_matched():
    assert encode({"content": "x"}, "stop", stop_reason="END")["stop_reason"] == "stop_sequence"
    assert encode({"content": "x"}, "stop", stop_reason="END")["stop_sequence"] == "END"
    assert encode({"content": "x"}, "stop", matched_stop="END")["stop_sequence"] == "END"
    other = encode({"content": "x"}, "stop", stop_reason="OTHER")  # not one the client sent
    assert (other["stop_reason"], other["stop_sequence"]) == ("end_turn", None)


def test_refusal_is_said_and_stops_as_refusal():
    out = encode({"content": None, "refusal": "I can't help with that."})
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


def test_usage_input_tokens_exclude_cache_reads_and_writes():
    usage = Usage(
        prompt_tokens=1000, completion_tokens=42, cached_tokens=700, cache_write_tokens=200
    )
    assert encode({"content": "x"}, usage=usage)["usage"] == {
        "input_tokens": 100,
        "output_tokens": 42,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 700,
    }
    odd = Usage(prompt_tokens=10, cached_tokens=20)  # inconsistent counts: never negative
    assert encode({"content": "x"}, usage=odd)["usage"]["input_tokens"] == 0


def test_unparseable_tool_arguments_become_empty_input_and_are_not_logged(caplog):
    caplog.set_level(logging.WARNING, "perpetuo.dialects")
    secret = '{"card": "4111 1111 1111 1111"'  # cut short
    call = {"id": "toolu_1", "type": "function", "function": {"name": "pay", "arguments": secret}}
    out = encode({"content": None, "tool_calls": [call]}, "tool_calls")
    assert out["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "pay", "input": {}}]
    assert caplog.records and "4111" not in caplog.text


# --- errors --------------------------------------------------------------------------------


def gateway_error(status: int, **headers: str) -> GatewayError:
    return GatewayError(status, f"failed {status}", type=ErrorType.SERVER, headers=headers)


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (
            bad_request("max_tokens: Field required", param="max_tokens"),
            400,
            "invalid_request_error",
        ),
        (gateway_error(401), 401, "authentication_error"),
        (gateway_error(402), 402, "billing_error"),
        (gateway_error(403), 403, "permission_error"),
        (model_not_found("claude-nope"), 404, "not_found_error"),
        (gateway_error(413), 413, "request_too_large"),
        (gateway_error(422), 422, "invalid_request_error"),
        (gateway_error(429, **{"retry-after": "7"}), 429, "rate_limit_error"),
        (gateway_error(500), 500, "api_error"),
        (gateway_error(502), 502, "api_error"),
        (gateway_error(503), 529, "overloaded_error"),
        (gateway_error(504), 504, "timeout_error"),
        (gateway_error(508), 508, "api_error"),
        (gateway_error(529), 529, "overloaded_error"),
    ],
)
def test_errors_render_in_anthropic_shape(error, status, kind):
    got_status, raw, headers = errors.render(error, request_id="req_123")
    data = msgspec.json.decode(raw)
    assert got_status == status
    assert data == {
        "type": "error",
        "error": {"type": kind, "message": error.message},
        "request_id": "req_123",
    }
    assert headers == error.headers
    if kind != "request_too_large":  # documented, but not among the SDK's error objects
        ErrorResponse.model_validate(data)
    assert errors.stream_event(error) == {
        "type": "error",
        "error": {"type": kind, "message": error.message},
    }


def test_retry_after_is_kept_and_request_id_is_optional():
    status, raw, headers = errors.render(gateway_error(429, **{"retry-after": "3"}))
    assert status == 429 and headers == {"retry-after": "3"}
    assert "request_id" not in msgspec.json.decode(raw)
