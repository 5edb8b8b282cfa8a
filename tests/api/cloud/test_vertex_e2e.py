"""The official openai SDK against the gateway, through Vertex AI deployments (the Vertex
mock, which only answers with tokens its own token endpoint issued for a correctly signed
service-account assertion): Gemini, Claude, embeddings, errors, token refresh, fallback."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.mocks import vertex_mock
from tests.mocks.server import Fault

USER = [{"role": "user", "content": "hello there"}]
PREFIX = f"/v1/projects/{vertex_mock.PROJECT}/locations/{vertex_mock.LOCATION}/publishers"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def bearer(recorded) -> str:
    headers = {name.lower(): value for name, value in recorded.headers.items()}
    return headers["authorization"].removeprefix("Bearer ")


def test_gemini_on_vertex_with_a_service_account_token(cloud_client, vertex):
    for _ in range(2):
        answer = cloud_client.chat.completions.create(model="vertex-gemini", messages=USER)
        assert answer.choices[0].message.content == "Echo: hello there"
        assert answer.usage.prompt_tokens == 5
    first, second = vertex.requests
    assert first.path == f"{PREFIX}/google/models/gemini-2.5-flash:generateContent"
    assert bearer(first) in vertex.tokens and bearer(first) == bearer(second)
    assert vertex.token_requests <= 1  # fetched once (or earlier in the session), then cached
    assert first.body["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]


def test_gemini_stream_tools_and_structured_output(cloud_client, vertex):
    stream = cloud_client.chat.completions.create(
        model="vertex-gemini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Echo: hello there"
    )
    assert chunks[-1].usage.completion_tokens == 3
    assert vertex.last.path.endswith(":streamGenerateContent")
    assert vertex.last.query == {"alt": "sse"}
    called = cloud_client.chat.completions.create(
        model="vertex-gemini", messages=[{"role": "user", "content": "Paris"}], tools=[WEATHER]
    )
    call = called.choices[0].message.tool_calls[0]
    assert called.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    shaped = cloud_client.chat.completions.create(
        model="vertex-gemini",
        messages=[{"role": "user", "content": "Lyon"}],
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    assert json.loads(shaped.choices[0].message.content) == {"city": "Lyon"}


def test_claude_on_vertex_raw_predict(cloud_client, vertex):
    answer = cloud_client.chat.completions.create(
        model="vertex-claude", messages=[{"role": "user", "content": "trigger cache hit"}]
    )
    assert answer.choices[0].message.content == "Echo: trigger cache hit"
    assert answer.usage.prompt_tokens_details.cached_tokens == 10
    assert answer.usage.prompt_tokens == 6 + 10 + 2
    sent = vertex.last
    assert sent.path == f"{PREFIX}/anthropic/models/claude-3-5-haiku@20241022:rawPredict"
    assert sent.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent.body
    stream = cloud_client.chat.completions.create(model="vertex-claude", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "Echo: hello there"
    )
    assert vertex.last.path.endswith(":streamRawPredict")


def test_claude_thinking_round_trip_on_vertex(cloud_client, vertex):
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    first = cloud_client.chat.completions.create(
        model="vertex-claude",
        messages=[{"role": "user", "content": "weather in Rome"}],
        tools=[WEATHER],
        max_tokens=2000,
        extra_body=thinking,
    )
    message = first.choices[0].message.model_dump(exclude_none=True)
    call_id = message["tool_calls"][0]["id"]
    second = cloud_client.chat.completions.create(
        model="vertex-claude",
        messages=[
            {"role": "user", "content": "weather in Rome"},
            message,
            {"role": "tool", "tool_call_id": call_id, "content": "warm"},
        ],
        tools=[WEATHER],
        max_tokens=2000,
        extra_body=thinking,
    )
    assert second.choices[0].message.content == "The tool returned: warm"
    assert vertex.last.body["messages"][1]["content"][0] == message["thinking_blocks"][0]


@pytest.mark.parametrize(
    ("model", "trigger", "error", "status", "code"),
    [
        ("vertex-gemini", "trigger quota", openai.RateLimitError, 429, "upstream_rate_limited"),
        (
            "vertex-gemini",
            "trigger context overflow",
            openai.BadRequestError,
            400,
            "context_length_exceeded",
        ),
        (
            "vertex-claude",
            "trigger context overflow",
            openai.BadRequestError,
            400,
            "context_length_exceeded",
        ),
        ("vertex-claude", "trigger overloaded", openai.APIStatusError, 503, "upstream_unavailable"),
        ("vertex-claude", "trigger quota", openai.RateLimitError, 429, "upstream_rate_limited"),
    ],
)
def test_vertex_errors_in_both_shapes(cloud_client, model, trigger, error, status, code):
    with pytest.raises(error) as exc:
        cloud_client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": trigger}]
        )
    assert exc.value.status_code == status
    assert exc.value.code == code


def test_forged_service_account_key_is_refused_at_the_token_endpoint(cloud_client, cloud_gateway):
    cloud_client.chat.completions.create(model="vertex-gemini", messages=USER)  # a token cached
    with pytest.raises(openai.APIStatusError) as exc:
        cloud_client.chat.completions.create(model="vertex-forged", messages=USER)
    assert exc.value.status_code == 502
    assert exc.value.code == "upstream_authentication_failed"
    assert "Google OAuth token endpoint refused the gateway's credentials" in exc.value.message
    log = cloud_gateway.log()
    assert "PRIVATE KEY" not in log and "ya29." not in log


def test_token_is_refreshed_before_it_expires(cloud_client, vertex):
    vertex.token_lifetime = 302  # fresh for two seconds: the gateway renews 300 s ahead
    cloud_client.chat.completions.create(model="vertex-refresh", messages=USER)
    cloud_client.chat.completions.create(model="vertex-refresh", messages=USER)
    assert vertex.token_requests == 1
    first = bearer(vertex.requests[0])
    assert bearer(vertex.requests[1]) == first
    time.sleep(2.2)
    cloud_client.chat.completions.create(model="vertex-refresh", messages=USER)
    assert vertex.token_requests == 2
    renewed = bearer(vertex.last)
    assert renewed != first
    assert vertex.tokens[first] > time.time()  # the old one had not expired yet


def test_embeddings_on_vertex(cloud_client, vertex):
    result = cloud_client.embeddings.create(
        model="vertex-embed", input=["alpha beta", "gamma"], dimensions=16, encoding_format="float"
    )
    assert [len(d.embedding) for d in result.data] == [16, 16]
    assert result.usage.prompt_tokens == 3
    assert vertex.last.path == f"{PREFIX}/google/models/text-embedding-005:predict"
    assert vertex.last.body == {
        "instances": [{"content": "alpha beta"}, {"content": "gamma"}],
        "parameters": {"outputDimensionality": 16},
    }


def test_fallback_from_vertex_to_gemini(cloud_client, vertex):
    unavailable = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    vertex.fail_next(Fault(status=503, body=unavailable))
    raw = cloud_client.chat.completions.with_raw_response.create(
        model="vertex-then-gemini", messages=USER
    )
    assert raw.headers["x-perpetuo-provider"] == "gemini-main"
    assert raw.parse().choices[0].message.content == "Echo: hello there"
