"""The Responses dialect's request decoder: Responses bodies to the chat form the pipeline
works on, with 400s naming the location and the features only OpenAI can serve named."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from perpetuo.api.dialects.openai_responses.request import decode, items_to_messages
from perpetuo.schema.chat import (
    AssistantMessage,
    AudioPart,
    ChatCompletionRequest,
    CustomTool,
    DeveloperMessage,
    FilePart,
    FunctionTool,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaResponseFormat,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from perpetuo.schema.errors import GatewayError

REASONING = {
    "id": "rs_abc",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "Need the weather twice."}],
    "encrypted_content": "gAAAA-opaque-proof",
    "content": None,
}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def request(**body: Any) -> Any:
    return decode(json.dumps({"model": "gpt-5", **body}).encode())


def as_valid_chat(req: Any) -> ChatCompletionRequest:
    """The IR re-validated by the chat schema: what the decoder built is a valid request."""
    return msgspec.json.decode(msgspec.json.encode(req.chat), type=ChatCompletionRequest)


# --- input items ---------------------------------------------------------------------------


def test_string_input_and_instructions_become_system_then_user():
    req = request(input="Hi there", instructions="Be brief.", stream=True)
    assert req.chat.messages == [
        SystemMessage(content="Be brief."),
        UserMessage(content="Hi there"),
    ]
    assert req.chat.stream is True and req.chat.wants_stream_usage  # metering needs usage
    assert req.native_only == []
    assert req.raw["input"] == "Hi there"
    as_valid_chat(req)


def test_every_message_kind_and_content_part():
    image = "https://example.com/cat.png"
    req = request(
        input=[
            {"role": "developer", "content": "Use metric units."},
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "S"}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Look:"},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                    {"type": "input_file", "file_data": "data:application/pdf;base64,QQ==",
                     "filename": "a.pdf"},
                    {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                ],
            },
            {"role": "assistant", "content": "Nice cat."},
        ]
    )  # fmt: skip
    developer, system, user, assistant = as_valid_chat(req).messages
    assert developer == DeveloperMessage(content="Use metric units.")
    assert system == SystemMessage(content=[TextPart(text="S")])
    assert isinstance(user, UserMessage)
    text, picture, document, audio = user.content
    assert text == TextPart(text="Look:")
    assert isinstance(picture, ImagePart)
    assert (picture.image_url.url, picture.image_url.detail) == (image, "low")
    assert isinstance(document, FilePart) and document.file.filename == "a.pdf"
    assert document.file.file_data == "data:application/pdf;base64,QQ=="
    assert isinstance(audio, AudioPart) and audio.input_audio.format == "wav"
    assert assistant == AssistantMessage(content="Nice cat.")
    assert req.native_only == []


def test_consecutive_output_items_merge_into_one_assistant_turn_with_parallel_calls():
    """reasoning + message + two function_calls are ONE assistant message, as chat says
    parallel calls; their outputs follow as tool messages with the same call ids."""
    req = request(
        input=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            REASONING,
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
            },
            {"type": "function_call", "id": "fc_1", "call_id": "call_P", "name": "get_weather",
             "arguments": '{"city":"Paris"}', "status": "completed"},
            {"type": "function_call", "id": "fc_2", "call_id": "call_R", "name": "get_weather",
             "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "call_P", "output": "18C"},
            {"type": "function_call_output", "call_id": "call_R",
             "output": [{"type": "input_text", "text": "21C"}]},
        ]
    )  # fmt: skip
    user, turn, paris, rome = as_valid_chat(req).messages
    assert isinstance(user, UserMessage)
    assert isinstance(turn, AssistantMessage)
    assert turn.content == "Checking."
    assert [(c.id, c.function.name, c.function.arguments) for c in turn.tool_calls] == [
        ("call_P", "get_weather", '{"city":"Paris"}'),
        ("call_R", "get_weather", '{"city":"Rome"}'),
    ]
    assert turn.thinking_blocks == [REASONING]  # verbatim: replayed to OpenAI as it came
    assert turn.reasoning_content == "Need the weather twice."
    assert paris == ToolMessage(content="18C", tool_call_id="call_P")
    assert rome == ToolMessage(content=[TextPart(text="21C")], tool_call_id="call_R")


def test_a_new_user_turn_closes_the_assistant_turn():
    messages = items_to_messages(
        [
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
        ]
    )
    kinds = [type(m).__name__ for m in messages]
    assert kinds == ["AssistantMessage", "ToolMessage", "AssistantMessage", "UserMessage",
                     "AssistantMessage"]  # fmt: skip
    assert messages[2].content == "Done." and messages[4].refusal == "No."


def test_reasoning_alone_with_null_content_is_kept_for_replay():
    item = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAx",
            "content": None}  # fmt: skip
    (turn,) = items_to_messages([item])
    assert turn.thinking_blocks == [item]
    assert turn.content is None and turn.tool_calls is msgspec.UNSET


def test_custom_tool_calls_round_trip_as_chat_custom_calls():
    _, turn, result = items_to_messages(
        [
            {"role": "user", "content": "run it"},
            {"type": "custom_tool_call", "call_id": "ct1", "name": "shell", "input": "ls -la"},
            {"type": "custom_tool_call_output", "call_id": "ct1", "output": "a.txt"},
        ]
    )
    (call,) = turn.tool_calls
    assert (call.id, call.custom.name, call.custom.input) == ("ct1", "shell", "ls -la")
    assert result == ToolMessage(content="a.txt", tool_call_id="ct1")


def test_items_only_openai_can_act_on_are_named_and_left_out():
    req = request(
        input=[
            {"role": "user", "content": [
                {"type": "input_text", "text": "see"},
                {"type": "input_image", "file_id": "file-123"},
                {"type": "input_file", "file_url": "https://example.com/a.pdf"},
            ]},
            {"type": "item_reference", "id": "msg_old"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "brand_new_item", "x": 1},
            {"type": "function_call_output", "call_id": "c", "output": [
                {"type": "input_image", "image_url": "https://example.com/i.png"}]},
        ]
    )  # fmt: skip
    assert req.native_only == [
        "input[0].content[1] (input_image file_id)",
        "input[0].content[2] (input_file file_url)",
        "input[1] (item_reference)",
        "input[2] (web_search_call)",
        "input[3] (brand_new_item)",
        "input[4].output[0] (input_image)",
    ]
    assert req.chat.messages[0].content == [TextPart(text="see")]
    assert req.raw["input"][3] == {"type": "brand_new_item", "x": 1}  # kept for the native lane


# --- parameters ----------------------------------------------------------------------------


def test_parameters_map_to_their_chat_meaning():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    req = request(
        input="hi",
        tools=[WEATHER, {"type": "custom", "name": "free_text", "description": "anything"}],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        text={"format": {"type": "json_schema", "name": "n", "schema": schema, "strict": True},
              "verbosity": "low"},
        reasoning={"effort": "high", "summary": "auto"},
        max_output_tokens=500,
        temperature=0.3,
        top_p=0.9,
        user="u1",
        safety_identifier="hash-1",
        prompt_cache_key="k",
        service_tier="flex",
        metadata={"trace": "1"},
        store=False,
        previous_response_id="resp_prev",
        include=["reasoning.encrypted_content"],
        truncation="auto",
    )  # fmt: skip
    chat = as_valid_chat(req)
    function, custom = chat.tools
    assert isinstance(function, FunctionTool) and function.function.name == "get_weather"
    assert function.function.parameters == WEATHER["parameters"]
    assert function.function.strict is True
    assert isinstance(custom, CustomTool) and custom.custom["name"] == "free_text"
    assert chat.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert chat.parallel_tool_calls is False
    assert isinstance(chat.response_format, JsonSchemaResponseFormat)
    spec = chat.response_format.json_schema
    assert (spec.name, spec.schema, spec.strict) == ("n", schema, True)
    assert (chat.verbosity, chat.reasoning_effort) == ("low", "high")
    assert chat.max_completion_tokens == 500 and chat.output_token_limit == 500
    assert (chat.temperature, chat.top_p) == (0.3, 0.9)
    assert (chat.user, chat.safety_identifier) == ("u1", "hash-1")
    assert (chat.prompt_cache_key, chat.service_tier) == ("k", "flex")
    # Responses-only state is not chat's: store/metadata mean something else there.
    assert chat.store is msgspec.UNSET and chat.metadata is msgspec.UNSET
    assert req.native_only == []


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", "required"),
        ("none", "none"),
        ({"type": "custom", "name": "free_text"}, {"type": "custom", "custom": {"name": "free_text"}}),
        (
            {"type": "allowed_tools", "mode": "required",
             "tools": [{"type": "function", "name": "get_weather"}]},
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
                {"type": "function", "function": {"name": "get_weather"}}]}},
        ),
    ],
)  # fmt: skip
def test_tool_choice_forms(choice, expected):
    assert request(input="x", tools=[WEATHER], tool_choice=choice).chat.tool_choice == expected


def test_built_in_tools_are_native_only_and_named():
    req = request(
        input="x",
        tools=[
            WEATHER,
            {"type": "web_search"},
            {"type": "web_search_preview"},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "computer_use_preview", "display_width": 1, "display_height": 1},
            {"type": "image_generation"},
            {"type": "mcp", "server_label": "wiki", "server_url": "https://mcp.example"},
            {"type": "local_shell"},
            {"type": "custom", "name": "sql", "format": {"type": "grammar", "syntax": "lark",
                                                         "definition": "start: 'x'"}},
            {"type": "namespace", "name": "crm", "description": "d", "tools": []},
        ],
        tool_choice={"type": "file_search"},
        conversation="conv_1",
        background=True,
    )  # fmt: skip
    assert req.native_only == [
        "tools[1] (web_search)",
        "tools[2] (web_search_preview)",
        "tools[3] (file_search)",
        "tools[4] (code_interpreter)",
        "tools[5] (computer_use_preview)",
        "tools[6] (image_generation)",
        "tools[7] (mcp)",
        "tools[8] (local_shell)",
        "tools[9] (custom grammar)",
        "tools[10] (namespace)",
        "tool_choice (file_search)",
        "conversation",
        "background",
    ]
    assert [t.function.name for t in req.chat.tools] == ["get_weather"]


def test_json_object_format_and_previous_response_without_input():
    req = request(text={"format": {"type": "json_object"}}, previous_response_id="resp_1")
    assert isinstance(req.chat.response_format, JsonObjectFormat)
    assert req.chat.messages == []  # the caller prepends the stored conversation


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": ["hi"]}, "input[0]"),
        ({"model": "m", "input": [{"content": "x"}]}, "input[0].type"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "user", "content": 7}]}, "input[0].content"),
        (
            {"model": "m", "input": [
                {"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
                {"role": "user", "content": [{"type": "input_image", "detail": "auto"}]}]},
            "input[3].content[0].image_url",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [
                {"type": "input_image", "image_url": "https://x/i.png", "detail": "huge"}]}]},
            "input[0].content[0].detail",
        ),
        ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]},
         "input[0].call_id"),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]},
         "input[0].output"),
        ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                                   "arguments": {"a": 1}}]}, "input[0].arguments"),
        ({"model": "m", "input": [{"type": "reasoning", "id": "r", "summary": "x"}]},
         "input[0].summary"),
        ({"model": "m", "input": "x", "tools": [{"type": "function", "name": "bad name"}]},
         "tools[0].name"),
        ({"model": "m", "input": "x", "tools": [{"type": "function",
                                                 "function": {"name": "chat_shape"}}]},
         "tools[0].name"),
        ({"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools[0].type"),
        ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "input": "x", "tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}},
         "text.format.name"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"model": "m", "input": "x", "temperature": 3}, "temperature"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "reasoning": {"effort": 3}}, "reasoning.effort"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream"),
    ],
)  # fmt: skip
def test_validation_errors_are_400_naming_the_location(body, param):
    with pytest.raises(GatewayError) as caught:
        decode(json.dumps(body).encode())
    error = caught.value
    assert (error.status, error.param) == (400, param)
    assert json.loads(error.body())["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_unreadable_bodies_are_invalid_json(body):
    with pytest.raises(GatewayError) as caught:
        decode(body)
    assert (caught.value.status, caught.value.code) == (400, "invalid_json")
