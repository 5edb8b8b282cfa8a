"""The pipeline's features for Responses and Messages clients, through a real gateway process:
an alias mixing provider formats falls back from one lane to the other (tools and streams
intact, routing headers right), rate limits refuse in each dialect's error shape, an alias
guardrail policy redacts on input and on output in both dialects, and the response cache
hits within a dialect and never across dialects."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.api.cache_support import until
from tests.api.dialects.matrix_support import (
    Answer,
    messages_answer,
    messages_stream,
    responses_answer,
    responses_stream,
)
from tests.conftest import full_config
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY, GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
OVERLOADED = Fault(
    status=529,
    body={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
)
EMAIL = "ada.lovelace@example.com"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def deployment(provider: str, model: str, priority: int = 0) -> dict[str, Any]:
    return {"provider": provider, "model": model, "priority": priority}


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    config, env = full_config(mocks)
    providers, models = config["providers"], config["models"]
    # Its own provider name, so that its failures do not touch other aliases' health.
    providers["anthropic-first"] = dict(providers["anthropic-main"])
    claude, gpt = "claude-3-5-haiku-latest", "gpt-4o-mini"
    models["mixed"] = {
        "deployments": [deployment("anthropic-first", claude), deployment("openai-main", gpt, 1)]
    }
    redact = {"detectors": {"email": "redact"}}
    models["redact-input"] = {
        "deployments": [deployment("anthropic-main", claude)],
        "guardrails": {**redact, "apply_to": ["input"]},
    }
    models["redact-output"] = {
        "deployments": [deployment("openai-main", gpt)],
        "guardrails": {**redact, "apply_to": ["output"]},
    }
    models["cached"] = {
        "deployments": [deployment("anthropic-main", claude)],
        "cache": {"enabled": True, "ttl_seconds": 600},
    }
    with GatewayProcess(config, tmp_path_factory.mktemp("dialects"), env=env) as process:
        yield process


def call(
    gw: GatewayProcess, path: str, body: dict[str, Any], key: str = MASTER_KEY, **headers: str
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", **ANTHROPIC_VERSION, **headers}
    return httpx.post(f"{gw.url}{path}", json=body, headers=headers, timeout=30)


def messages(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def responses(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "input": text, "store": False, **extra}


def answer_of(dialect: str, response: httpx.Response, stream: bool) -> Answer:
    """The answer, complete or streamed (its framing checked as it is read)."""
    if dialect == "messages":
        return messages_stream(response.text) if stream else messages_answer(response.json())
    return responses_stream(response.text) if stream else responses_answer(response.json())


# -- a fallback that changes the provider's wire format -------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_messages_fall_back_from_anthropic_to_openai(gw, mocks, stream):
    mocks["anthropic"].fail_next(OVERLOADED)
    body = messages(
        "mixed", "weather in Oslo", tools=[{"name": "get_weather", "input_schema": WEATHER}]
    )
    response = call(
        gw, "/v1/messages", {**body, "stream": stream}, **{"x-request-id": "fallback-m1"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == response.headers["request-id"] == "fallback-m1"
    assert response.headers["x-perpetuo-provider"] == "openai-main"
    assert response.headers["x-perpetuo-fallback"] == "true"
    assert response.headers["x-perpetuo-attempts"] == "2"
    calls = answer_of("messages", response, stream).calls
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "weather in Oslo"})]
    assert mocks["anthropic"].last.body["tools"] == body["tools"]  # the native body, first
    sent = mocks["openai"].last.body  # then the same request, translated
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent.get("stream", False) is stream


@pytest.mark.parametrize("stream", [False, True])
def test_responses_fall_back_from_anthropic_to_openai(gw, mocks, stream):
    mocks["anthropic"].fail_next(OVERLOADED)
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER}
    body = responses("mixed", "weather in Lima", tools=[tool], stream=stream)
    response = call(gw, "/v1/responses", body, **{"x-request-id": "fallback-r1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "fallback-r1"
    assert response.headers["x-perpetuo-provider"] == "openai-main"
    assert response.headers["x-perpetuo-fallback"] == "true"
    calls = answer_of("responses", response, stream).calls
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "weather in Lima"})]
    if stream:
        assert response.content == mocks["openai"].answers[-1]  # now on the native lane
    assert mocks["anthropic"].last.body["tools"][0]["name"] == "get_weather"  # translated first
    assert mocks["openai"].last.body == {**body, "model": "gpt-4o-mini"}  # then as sent


def test_without_a_failure_the_first_deployment_serves(gw, mocks):
    response = call(gw, "/v1/messages", messages("mixed", "hello"))
    assert response.headers["x-perpetuo-provider"] == "anthropic-first"
    assert response.headers["x-perpetuo-fallback"] == "false"
    assert not mocks["openai"].requests


# -- limits ---------------------------------------------------------------------------------


def test_rate_limits_refuse_in_each_dialects_shape(gw):
    made = httpx.post(
        f"{gw.url}/api/workspaces/ws_default/keys",
        headers=ADMIN,
        json={"name": "one-a-minute", "limits": {"rpm": 1}},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    key = made.json()["data"]["key"]
    claude = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    assert claude.messages.create(**messages("claude", "first")).content[0].text == "Echo: first"
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(**messages("claude", "second"))
    body = refused.value.body
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert int(refused.value.response.headers["retry-after"]) >= 1
    with pytest.raises(openai.RateLimitError) as also:
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0).responses.create(
            model="gpt-4o-mini", input="third"
        )
    assert also.value.code == "rate_limit_requests"
    streamed = call(gw, "/v1/messages", messages("claude", "fourth", stream=True), key=key)
    assert streamed.status_code == 429 and streamed.json()["error"]["type"] == "rate_limit_error"


# -- guardrails -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("dialect", ["messages", "responses"])
def test_an_alias_policy_redacts_input(gw, mocks, dialect, stream):
    build = messages if dialect == "messages" else responses
    response = call(gw, f"/v1/{dialect}", build("redact-input", f"mail {EMAIL} now", stream=stream))
    assert response.status_code == 200, response.text
    assert answer_of(dialect, response, stream).text == "Echo: mail <EMAIL_1> now"
    sent = json.dumps(mocks["anthropic"].last.body)
    assert EMAIL not in sent and "<EMAIL_1>" in sent


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("dialect", ["messages", "responses"])
def test_an_alias_policy_redacts_output(gw, mocks, dialect, stream):
    build = messages if dialect == "messages" else responses
    text = f"write to {EMAIL} in small pieces"  # the address spans several stream events
    response = call(gw, f"/v1/{dialect}", build("redact-output", text, stream=stream))
    assert response.status_code == 200, response.text
    assert EMAIL in json.dumps(mocks["openai"].last.body)  # input untouched
    assert answer_of(dialect, response, stream).text == "Echo: write to <EMAIL_1> in small pieces"
    assert EMAIL not in response.text


def test_a_rewriting_policy_refuses_what_only_the_native_lane_carries(gw, mocks):
    server_tool = {"type": "web_search_20250305", "name": "web_search"}
    clean = call(gw, "/v1/messages", messages("redact-input", "news", tools=[server_tool]))
    assert clean.status_code == 200  # nothing to redact: the body went as it was
    assert mocks["anthropic"].last.body["tools"] == [server_tool]
    mocks["anthropic"].requests.clear()
    text = f"news for {EMAIL}"
    rewritten = call(gw, "/v1/messages", messages("redact-input", text, tools=[server_tool]))
    assert rewritten.status_code == 400
    error = rewritten.json()["error"]
    assert error["type"] == "invalid_request_error" and "tools[0]" in error["message"]
    assert not mocks["anthropic"].requests


# -- the cache ------------------------------------------------------------------------------


def cache_entries(gw: GatewayProcess) -> int:
    stats = httpx.get(f"{gw.url}/api/workspaces/ws_default/cache", headers=ADMIN, timeout=30)
    return stats.json()["data"]["exact"]["entries"]


def test_the_cache_hits_within_a_dialect_and_never_across(gw, mocks):
    body = messages("cached", "remember this answer")
    first = call(gw, "/v1/messages", body)
    assert first.headers["x-perpetuo-cache"] == "miss"
    assert until(lambda: cache_entries(gw) == 1)  # answers are stored off the response path
    second = call(gw, "/v1/messages", body)
    assert second.headers["x-perpetuo-cache"] == "hit"
    assert second.json()["content"] == first.json()["content"]
    assert second.json()["stop_reason"] == "end_turn"
    streamed = call(gw, "/v1/messages", {**body, "stream": True})
    assert streamed.headers["x-perpetuo-cache"] == "hit"
    assert answer_of("messages", streamed, True).text == "Echo: remember this answer"
    assert len(mocks["anthropic"].requests) == 1
    other = call(gw, "/v1/responses", responses("cached", "remember this answer"))
    assert other.headers["x-perpetuo-cache"] == "miss"  # the same content, another dialect
    chat = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers=ADMIN,
        json={"model": "cached", "max_tokens": 300, "messages": body["messages"]},
        timeout=30,
    )
    assert chat.headers["x-perpetuo-cache"] == "miss"
    assert len(mocks["anthropic"].requests) == 3
