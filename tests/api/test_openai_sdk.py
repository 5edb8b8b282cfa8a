"""The official openai SDK (sync and async) against the gateway, through an OpenAI upstream."""

from __future__ import annotations

import base64
import json
import struct
import time

import httpx
import openai
import pytest

from tests.mocks.server import Fault
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
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


def test_chat_completion_round_trip(client, openai_mock):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
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
    assert completion.usage.prompt_tokens > 0
    assert (
        completion.usage.total_tokens
        == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-perpetuo-provider"] == "openai-main"
    assert raw.headers["x-perpetuo-model"] == "gpt-4o-mini"
    assert raw.headers["x-perpetuo-attempts"] == "1"
    assert raw.headers["x-perpetuo-fallback"] == "false"
    assert raw.headers["x-request-id"].startswith("req_")
    sent = openai_mock.last
    # The provider's key goes upstream, never the client's gateway key.
    assert sent.headers["Authorization"] == "Bearer sk-test-openai"
    assert sent.body["seed"] == 7 and sent.body["user"] == "user-42"
    assert sent.body["temperature"] == 0.2


def test_request_id_is_echoed(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "x"}],
        extra_headers={"x-request-id": "my-trace-123"},
    )
    assert raw.headers["x-request-id"] == "my-trace-123"


def test_stream_without_usage_requested(client, openai_mock):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream me please"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me please"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Usage was still requested upstream, for metering.
    assert openai_mock.last.body["stream_options"] == {"include_usage": True}


def test_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "count me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 3  # "Echo: count me"
    assert chunks[-1].usage.prompt_tokens > 0


def test_tool_calls(client, openai_mock):
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["unit"] == "c"
    assert openai_mock.last.body["tools"][0]["function"]["name"] == "get_weather"

    follow_up = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content == "The tool returned: 18C and sunny"


def test_streamed_parallel_tool_calls(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "use all tools"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        parallel_tool_calls=True,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                if delta.function.name:
                    entry["name"] = delta.function.name
                entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"])["location"] == "use all tools"


def test_json_schema_response_format(client, openai_mock):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Lyon"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
    )
    data = json.loads(completion.choices[0].message.content)
    assert data == {"city": "Lyon", "population": 1}
    assert openai_mock.last.body["response_format"]["json_schema"]["strict"] is True


def test_multimodal_n_and_logprobs(client, openai_mock):
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    },
                ],
            }
        ],
        n=2,
        logprobs=True,
        top_logprobs=0,
        max_completion_tokens=50,
        stop=["zzz"],
    )
    assert len(completion.choices) == 2
    assert completion.choices[1].message.content == "Echo: describe [1 image(s)]"
    assert completion.choices[0].logprobs.content[0].token == "Echo:"
    sent = openai_mock.last.body
    assert sent["messages"][0]["content"][1]["image_url"]["detail"] == "low"
    assert sent["max_completion_tokens"] == 50 and sent["n"] == 2


def test_max_tokens_truncation_reports_length(client):
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "one two three four"}],
        max_tokens=2,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Echo: one"


def test_embeddings_float_and_base64(client, openai_mock):
    as_floats = client.embeddings.create(
        model="text-embedding-3-small",
        input=["alpha", "beta"],
        encoding_format="float",
        dimensions=4,
    )
    assert [len(d.embedding) for d in as_floats.data] == [4, 4]
    assert as_floats.usage.prompt_tokens == 2
    # The SDK asks for base64 by default and decodes it: the vectors must match.
    default = client.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=4)
    assert openai_mock.last.body["encoding_format"] == "base64"
    assert default.data[0].embedding == pytest.approx(as_floats.data[0].embedding, abs=1e-6)


def test_models_list_and_retrieve(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "text-embedding-3-small", "azure-gpt"} <= ids
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_error_classes(client, gateway, openai_mock):
    bad = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(
            model="no-such-alias", messages=[{"role": "user", "content": "x"}]
        )
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad_request:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], temperature=5
        )
    assert bad_request.value.param == "temperature"
    openai_mock.fail_next(
        Fault(
            status=429,
            body={
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            headers={"retry-after": "7"},
        )
    )
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "7"
    openai_mock.fail_next(
        Fault(
            status=500,
            body={
                "error": {"message": "boom", "type": "server_error", "param": None, "code": None}
            },
        )
    )
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert failed.value.status_code == 502


def test_context_overflow_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "trigger context overflow"}]
        )
    assert exc.value.code == "context_length_exceeded"
    assert "maximum context length" in exc.value.message


def test_failover_across_deployments(client, openai_mock):
    raw = client.chat.completions.with_raw_response.create(
        model="failover", messages=[{"role": "user", "content": "survive"}]
    )
    assert raw.parse().choices[0].message.content == "Echo: survive"
    assert raw.headers["x-perpetuo-attempts"] == "3"
    assert raw.headers["x-perpetuo-fallback"] == "true"
    assert raw.headers["x-perpetuo-provider"] == "openai-main"


def test_rejected_provider_credential_is_a_gateway_error_without_secrets(client):
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(
            model="only-bad-key", messages=[{"role": "user", "content": "x"}]
        )
    assert exc.value.status_code == 502
    assert exc.value.code == "upstream_authentication_failed"
    assert "sk-" not in exc.value.message and "wrong" not in exc.value.message


def test_extra_params_only_where_allowed(client, openai_mock):
    client.chat.completions.create(
        model="with-extras", messages=[{"role": "user", "content": "x"}], extra_body={"top_k": 5}
    )
    assert openai_mock.last.body["top_k"] == 5
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"top_k": 5},
        )
    assert exc.value.param == "top_k"


def test_azure_deployment_routes(client, openai_mock):
    completion = client.chat.completions.create(
        model="azure-gpt", messages=[{"role": "user", "content": "hi azure"}]
    )
    assert completion.choices[0].message.content == "Echo: hi azure"
    sent = openai_mock.last
    assert sent.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert sent.query["api-version"] == "2024-10-21"
    assert sent.headers["api-key"] == "azure-test-key"
    assert "Authorization" not in sent.headers
    v1 = client.chat.completions.create(
        model="azure-v1-gpt", messages=[{"role": "user", "content": "v1"}]
    )
    assert v1.choices[0].message.content == "Echo: v1"
    assert openai_mock.last.path == "/openai/v1/chat/completions"
    assert openai_mock.last.body["model"] == "gpt-4o"
    embedded = client.embeddings.create(model="azure-embed", input="x", encoding_format="float")
    assert len(embedded.data[0].embedding) == 8


def test_azure_content_filter(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="azure-gpt", messages=[{"role": "user", "content": "trigger content filter"}]
        )
    assert exc.value.code == "content_policy_violation"


async def test_async_client_chat_and_stream(async_client):
    completion = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "async hi"}]
    )
    assert completion.choices[0].message.content == "Echo: async hi"
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "unicode please"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.startswith("Grüße aus Köln") and "👋🏽" in text


def test_client_disconnect_cancels_upstream_stream(gateway, openai_mock):
    openai_mock.fail_next(Fault(event_delay=0.3))
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [
            {"role": "user", "content": "a fairly long answer with many words in it please"}
        ],
    }
    with (
        httpx.Client(timeout=10) as http,
        http.stream(
            "POST",
            f"{gateway.url}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        ) as response,
    ):
        assert response.status_code == 200
        next(response.iter_raw())
    deadline = time.monotonic() + 3
    while openai_mock.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert openai_mock.disconnects == 1


def test_stream_cut_mid_way_ends_with_error_event(client, openai_mock):
    openai_mock.fail_next(Fault(cut_after=3))
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "one two three four five"}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            received.append(chunk)
    assert received  # the first chunks were delivered before the failure
    # The error names the deployment and what happened to it.
    assert exc.value.message.startswith("openai-main: ")
    assert "closed the connection in the middle of its answer" in exc.value.message


def test_base64_embedding_shape(client):
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="alpha", dimensions=4, encoding_format="base64"
    )
    payload = json.loads(raw.http_response.content)
    decoded = struct.unpack("<4f", base64.b64decode(payload["data"][0]["embedding"]))
    assert len(decoded) == 4
