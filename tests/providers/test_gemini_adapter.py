"""Gemini adapter, requests: OpenAI chat and embeddings requests as Gemini wire bodies."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import msgspec
import pytest

from perpetuo.providers.base import Target
from perpetuo.providers.gemini import GeminiAdapter
from perpetuo.providers.gemini.toolids import make_call_id
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.url import URL

ADAPTER = GeminiAdapter()


def target(base: str = "https://generativelanguage.googleapis.com", **fields: Any) -> Target:
    defaults: dict[str, Any] = {"model": "gemini-2.0-flash", "api_key": "AIza-key"}
    return Target("g", "gemini", base_url=URL.parse(base), **{**defaults, **fields})


def chat(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return msgspec.convert({"model": "alias", **fields}, ChatCompletionRequest)


def body(extras: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    call = ADAPTER.chat_request(chat(**fields), target(), extras or {})
    return json.loads(call.body)


def failure(**fields: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as exc:
        body(**fields)
    return exc.value


def assistant_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def test_system_and_developer_messages_become_the_system_instruction():
    sent = body(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": ""},  # Gemini rejects empty text parts
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        ]
    )
    assert sent == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use French."}]},
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    }


def test_roles_map_and_consecutive_turns_merge():
    sent = body(
        messages=[
            {"role": "user", "content": "one"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}],
            },
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": None, "refusal": None},  # nothing to send
            {"role": "assistant", "content": [{"type": "text", "text": "four"}]},
            {"role": "user", "content": "five"},
        ]
    )
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "three"}, {"text": "four"}]},
        {"role": "user", "parts": [{"text": "five"}]},
    ]


def test_tool_calls_replay_and_results_recover_their_function_names():
    signed = make_call_id("resp", 0, 0, "get_weather", "c2lnbmF0dXJl")
    sent = body(
        messages=[
            {"role": "user", "content": "weather and time?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    assistant_call(signed, "get_weather", '{"city": "Oslo"}'),
                    assistant_call("call_b", "get_time", ""),
                ],
            },
            {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
            {"role": "tool", "tool_call_id": signed, "content": '{"temp": 3}'},
            {"role": "tool", "tool_call_id": "call_b", "content": "[1, 2]"},
            {"role": "user", "content": "thanks"},
        ]
    )
    model, results = sent["contents"][1:]
    assert model == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                "thoughtSignature": "c2lnbmF0dXJl",
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
            {"functionResponse": {"name": "get_weather", "response": {"temp": 3}}},
            {"functionResponse": {"name": "get_time", "response": {"result": [1, 2]}}},
            {"text": "thanks"},
        ],
    }


def test_legacy_function_messages():
    sent = body(
        messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "function_call": {"name": "lookup", "arguments": '{"q": 1}'}},
            {"role": "function", "name": "lookup", "content": "found"},
        ],
        functions=[{"name": "lookup", "parameters": {"type": "object"}}],
        function_call={"name": "lookup"},
    )
    assert sent["contents"][1]["parts"] == [{"functionCall": {"name": "lookup", "args": {"q": 1}}}]
    assert sent["contents"][2]["parts"][0]["functionResponse"]["response"] == {"result": "found"}
    assert sent["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}
    }


def test_a_tool_result_without_its_call_is_the_clients_error():
    error = failure(
        messages=[
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_missing", "content": "r"},
        ]
    )
    assert error.kind is UpstreamErrorKind.INVALID_REQUEST
    assert error.param == "messages[1].tool_call_id"


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_unusable_tool_arguments_are_unsupported(arguments):
    error = failure(
        messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [assistant_call("c1", "f", arguments)]},
        ]
    )
    assert error.kind is UpstreamErrorKind.UNSUPPORTED
    assert error.param == "messages[1].tool_calls[0].function.arguments"


def test_images_audio_and_files_become_inline_or_file_data():
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a/photo.PNG?size=2"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/files/abc"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
    ]
    sent = body(messages=[{"role": "user", "content": parts}])
    assert sent["contents"][0]["parts"] == [
        {"text": "look"},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a/photo.PNG?size=2"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/files/abc"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "ftp://x.test/a.png"}},
        {"type": "file", "file": {"file_id": "file-123"}},
    ],
)
def test_unreachable_media_is_unsupported(part):
    error = failure(messages=[{"role": "user", "content": [part]}])
    assert error.kind is UpstreamErrorKind.UNSUPPORTED


TOOL = {"type": "function", "function": {"name": "get_time"}}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("none", {"mode": "NONE"}),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        ),
    ],
)
def test_tool_choice(choice, config):
    assert body(tools=[TOOL], tool_choice=choice)["toolConfig"] == {"functionCallingConfig": config}


def test_unknown_tool_choice_forms_are_unsupported():
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}
    assert failure(tools=[TOOL], tool_choice=choice).param == "tool_choice"


def test_tools_become_function_declarations_with_json_schema_parameters():
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    tools = [
        {"type": "function", "function": {"name": "a", "description": "d", "parameters": schema}},
        TOOL,
    ]
    sent = body(tools=tools, parallel_tool_calls=False)
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {"name": "a", "description": "d", "parametersJsonSchema": schema},
                {"name": "get_time"},
            ]
        }
    ]
    assert "toolConfig" not in sent  # no choice given; parallel_tool_calls has no counterpart
    custom = {"type": "custom", "custom": {"name": "grammar"}}
    assert failure(tools=[custom]).kind is UpstreamErrorKind.UNSUPPORTED


def test_generation_config_and_dropped_parameters():
    sent = body(
        temperature=0.5,
        top_p=0.9,
        n=2,
        seed=3,
        presence_penalty=0.1,
        frequency_penalty=-0.2,
        max_tokens=100,
        stop="END",
        logprobs=True,
        top_logprobs=3,
        reasoning_effort="low",
        user="u",
        store=True,
        metadata={"k": "v"},
        service_tier="auto",
        logit_bias={"42": 1},
        prompt_cache_key="pc",
    )
    assert sent == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {
            "temperature": 0.5,
            "topP": 0.9,
            "candidateCount": 2,
            "seed": 3,
            "presencePenalty": 0.1,
            "frequencyPenalty": -0.2,
            "maxOutputTokens": 100,
            "stopSequences": ["END"],
            "responseLogprobs": True,
            "logprobs": 3,
            "thinkingConfig": {"thinkingBudget": 1024},
        },
    }
    assert body(max_tokens=5, max_completion_tokens=9)["generationConfig"]["maxOutputTokens"] == 9


def test_response_formats():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    as_schema = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    assert body(response_format=as_schema)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    assert body(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    assert "generationConfig" not in body(response_format={"type": "text"})


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ],
)
def test_unsupported_parameters_name_themselves(fields, param):
    error = failure(**fields)
    assert (error.kind, error.param) == (UpstreamErrorKind.UNSUPPORTED, param)


def test_extras_are_camel_cased_when_known():
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    extras = {
        "top_k": 40,
        "thinking_config": {"includeThoughts": False},
        "safety_settings": safety,
        "brand_new_knob": 1,
    }
    sent = body(extras, temperature=1.0)
    assert sent["safetySettings"] == safety
    assert sent["generationConfig"] == {
        "temperature": 1.0,
        "topK": 40,
        "thinkingConfig": {"includeThoughts": False},
        "brand_new_knob": 1,
    }


def test_urls_and_headers():
    plain = ADAPTER.chat_request(chat(), target(), {})
    assert str(plain.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    )
    assert ("x-goog-api-key", "AIza-key") in plain.headers
    assert not any(name == "authorization" for name, _ in plain.headers)
    streamed = ADAPTER.chat_request(chat(stream=True), target(), {})
    assert str(streamed.url).endswith(
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    )
    custom = target(
        "https://proxy.test/gemini/",
        api_version="v1",
        model="tunedModels/mine",
        headers=(("x-team", "a"),),
    )
    call = ADAPTER.chat_request(chat(), custom, {})
    assert str(call.url) == "https://proxy.test/gemini/v1/tunedModels/mine:generateContent"
    assert ("x-team", "a") in call.headers
    versioned = target("https://generativelanguage.googleapis.com/v1beta", api_version="v1")
    assert ADAPTER.chat_request(chat(), versioned, {}).url.target == (
        "/v1beta/models/gemini-2.0-flash:generateContent"
    )
    # No key configured: nothing is sent, and Google's own 403 tells the operator.
    keyless = ADAPTER.chat_request(chat(), target(api_key=None), {})
    assert not any(name == "x-goog-api-key" for name, _ in keyless.headers)


def embed_request(**fields: Any) -> EmbeddingRequest:
    return msgspec.convert({"model": "alias", **fields}, EmbeddingRequest)


def test_embeddings_request():
    model = target(model="text-embedding-004")
    call = ADAPTER.embeddings_request(embed_request(input=["a", "b"], dimensions=3), model)
    assert str(call.url).endswith("/v1beta/models/text-embedding-004:batchEmbedContents")
    assert json.loads(call.body) == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": text}]},
                "outputDimensionality": 3,
            }
            for text in ("a", "b")
        ]
    }
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.embeddings_request(embed_request(input=[[1, 2], [3]]), model)
    assert (exc.value.kind, exc.value.param) == (UpstreamErrorKind.UNSUPPORTED, "input")


def test_embeddings_response_floats_base64_and_usage():
    raw = json.dumps({"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]}).encode()
    model = target(model="text-embedding-004")
    floats = ADAPTER.embeddings_response(raw, model, embed_request(input=["a", "b"]))
    assert floats == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
            {"object": "embedding", "index": 1, "embedding": [0.25, 2.0]},
        ],
        "model": "text-embedding-004",
    }  # no usage: the pipeline estimates it and marks it estimated
    packed = ADAPTER.embeddings_response(
        raw, model, embed_request(input=["a", "b"], encoding_format="base64")
    )
    decoded = struct.unpack("<2f", base64.b64decode(packed["data"][1]["embedding"]))
    assert decoded == (0.25, 2.0)
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.embeddings_response(raw, model, embed_request(input=["a", "b", "c"]))
    assert exc.value.kind is UpstreamErrorKind.BAD_RESPONSE
