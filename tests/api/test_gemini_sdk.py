"""The official openai SDK against the gateway, through a Gemini upstream (the Gemini mock)."""

from __future__ import annotations

import base64
import json
import struct

import openai
import pytest

from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY

GEMINI_KEY = "AIza-test-gemini-key-000000000"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def gemini(mocks):
    return mocks["gemini"]


def headers_of(recorded) -> dict[str, str]:
    return {k.lower(): v for k, v in recorded.headers.items()}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_chat_round_trip(client, gemini):
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-flash",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        temperature=0.2,
        seed=7,
        user="user-42",
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gemini-2.0-flash-001"  # the upstream's modelVersion
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens == 3
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert raw.headers["x-perpetuo-provider"] == "gemini-main"
    sent = gemini.last
    assert sent.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    headers = headers_of(sent)
    assert headers["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in headers
    assert MASTER_KEY not in json.dumps(headers) + json.dumps(sent.body)
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]
    assert sent.body["generationConfig"] == {"temperature": 0.2, "seed": 7}


def test_stream_without_usage_requested(client, gemini):
    stream = client.chat.completions.create(
        model="gemini-flash", messages=user("stream me please"), stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me please"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert gemini.last.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    assert gemini.last.query == {"alt": "sse"}


def test_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="gemini-flash",
        messages=user("count me"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 3  # "Echo: count me", from the last event
    assert chunks[-1].usage.prompt_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_tool_call_and_result_follow_up(client, gemini):
    completion = client.chat.completions.create(
        model="gemini-flash",
        messages=user("weather in Paris?"),
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "weather in Paris?", "unit": "c"}
    declaration = gemini.last.body["tools"][0]["functionDeclarations"][0]
    assert declaration["parametersJsonSchema"]["additionalProperties"] is False
    assert gemini.last.body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    follow_up = client.chat.completions.create(
        model="gemini-flash",
        messages=[
            *user("weather in Paris?"),
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content == "The tool returned: 18C and sunny"
    contents = gemini.last.body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"result": "18C and sunny"}}}
    ]


def test_named_tool_choice(client, gemini):
    completion = client.chat.completions.create(
        model="gemini-flash",
        messages=user("what time is it"),
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert completion.choices[0].message.tool_calls[0].function.name == "get_time"
    assert gemini.last.body["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["get_time"],
    }


def test_streamed_parallel_tool_calls(client):
    stream = client.chat.completions.create(
        model="gemini-flash",
        messages=user("use all tools"),
        tools=[WEATHER_TOOL, TIME_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] = delta.id or entry["id"]
                entry["name"] = delta.function.name or entry["name"]
                entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[0]["arguments"])["location"] == "use all tools"


def test_thought_signature_survives_the_round_trip(client, gemini):
    """Gemini 3 rejects a replayed function call without its signature (the mock too)."""
    messages = user("weather in Oslo?")
    first = client.chat.completions.create(
        model="gemini-3", messages=messages, tools=[WEATHER_TOOL]
    )
    call = first.choices[0].message.tool_calls[0]
    signature = gemini.last  # the answer carried a signature, now inside the call id
    assert signature.path.endswith("gemini-3-pro-preview:generateContent")
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 3}'},
    ]
    second = client.chat.completions.create(
        model="gemini-3", messages=messages, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == 'The tool returned: {"temp": 3}'
    replayed = gemini.last.body["contents"][1]["parts"][0]
    assert base64.b64decode(replayed["thoughtSignature"]).startswith(b"gemini-mock-signature:")
    # A history whose call lost its signature is refused by the model, as the real API does.
    messages[1]["tool_calls"][0]["id"] = "call_plain"
    messages[2]["tool_call_id"] = "call_plain"
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="gemini-3", messages=messages, tools=[WEATHER_TOOL])
    assert "thought_signature" in exc.value.message


def test_json_schema_response_format(client, gemini):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="gemini-flash",
        messages=user("Lyon"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
    )
    assert json.loads(completion.choices[0].message.content) == {"city": "Lyon", "population": 1}
    config = gemini.last.body["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_images_and_two_candidates(client, gemini):
    completion = client.chat.completions.create(
        model="gemini-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
                ],
            }
        ],
        n=2,
        max_completion_tokens=50,
        stop=["zzz"],
    )
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[1].message.content == "Echo: describe [2 image(s)]"
    sent = gemini.last.body
    assert sent["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}},
    ]
    assert sent["generationConfig"] == {
        "candidateCount": 2,
        "maxOutputTokens": 50,
        "stopSequences": ["zzz"],
    }


def test_max_tokens_truncation_reports_length(client):
    completion = client.chat.completions.create(
        model="gemini-flash", messages=user("one two three four"), max_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Echo: one"


def test_thinking_tokens_are_reasoning_and_thoughts_stay_hidden(client):
    completion = client.chat.completions.create(
        model="gemini-flash", messages=user("think hard about it")
    )
    assert completion.choices[0].message.content == "Echo: think hard about it"
    details = completion.usage.completion_tokens_details
    assert details.reasoning_tokens == 7
    assert completion.usage.completion_tokens == 5 + 7


def test_safety_stop_is_content_filter(client):
    completion = client.chat.completions.create(
        model="gemini-flash", messages=user("trigger safety")
    )
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content is None
    stream = client.chat.completions.create(
        model="gemini-flash", messages=user("trigger safety"), stream=True
    )
    assert [c.choices[0].finish_reason for c in stream] == ["content_filter"]


@pytest.mark.parametrize("stream", [False, True])
def test_blocked_prompt_is_a_bad_request(client, stream):
    with pytest.raises(openai.BadRequestError) as exc:
        response = client.chat.completions.create(
            model="gemini-flash", messages=user("trigger blocked prompt"), stream=stream
        )
        list(response) if stream else None
    assert exc.value.code == "content_policy_violation"
    assert "SAFETY" in exc.value.message


def test_quota_is_a_rate_limit_with_retry_delay(client):
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="gemini-flash", messages=user("trigger quota"))
    assert exc.value.response.headers["retry-after"] == "7"  # from RetryInfo.retryDelay


def test_context_overflow_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="gemini-flash", messages=user("trigger context overflow")
        )
    assert exc.value.code == "context_length_exceeded"
    assert "exceeds the maximum number of tokens" in exc.value.message


def test_unavailable_upstream_is_503(client, gemini):
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    gemini.fail_next(Fault(status=503, body=error))
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="gemini-flash", messages=user("x"))
    assert exc.value.status_code == 503


def test_invalid_key_fails_over_to_the_next_deployment(client, gemini):
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-failover", messages=user("survive")
    )
    assert raw.parse().choices[0].message.content == "Echo: survive"
    assert raw.headers["x-perpetuo-attempts"] == "2"
    assert raw.headers["x-perpetuo-fallback"] == "true"
    keys = [headers_of(r)["x-goog-api-key"] for r in gemini.requests]
    assert keys == ["AIza-wrong-key-0000000000000000000", GEMINI_KEY]


def test_extra_params_only_where_allowed(client, gemini):
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    client.chat.completions.create(
        model="gemini-extras",
        messages=user("x"),
        extra_body={"top_k": 5, "safety_settings": safety},
    )
    assert gemini.last.body["generationConfig"] == {"topK": 5}
    assert gemini.last.body["safetySettings"] == safety
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="gemini-flash", messages=user("x"), extra_body={"top_k": 5}
        )
    assert exc.value.param == "top_k"


def test_embeddings_float_and_base64(client, gemini):
    as_floats = client.embeddings.create(
        model="gemini-embed", input=["alpha", "beta"], encoding_format="float", dimensions=4
    )
    assert [len(d.embedding) for d in as_floats.data] == [4, 4]
    assert as_floats.usage.prompt_tokens > 0  # estimated: the API reports none
    sent = gemini.last
    assert sent.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.body["requests"][1] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "beta"}]},
        "outputDimensionality": 4,
    }
    # The SDK asks for base64 by default and decodes it: the vectors must match.
    default = client.embeddings.create(model="gemini-embed", input="alpha", dimensions=4)
    assert default.data[0].embedding == pytest.approx(as_floats.data[0].embedding, abs=1e-6)
    raw = client.embeddings.with_raw_response.create(
        model="gemini-embed", input="alpha", dimensions=4, encoding_format="base64"
    )
    encoded = json.loads(raw.http_response.content)["data"][0]["embedding"]
    assert len(struct.unpack("<4f", base64.b64decode(encoded))) == 4


def test_token_id_embeddings_are_unsupported(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.embeddings.create(model="gemini-embed", input=[1, 2, 3], encoding_format="float")
    assert exc.value.code == "unsupported_parameter"


async def test_async_client_chat_and_unicode_stream(async_client):
    completion = await async_client.chat.completions.create(
        model="gemini-flash", messages=user("async hi")
    )
    assert completion.choices[0].message.content == "Echo: async hi"
    stream = await async_client.chat.completions.create(
        model="gemini-flash", messages=user("unicode please"), stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.startswith("Grüße aus Köln") and "👋🏽" in text
