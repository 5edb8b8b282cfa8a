"""The OpenAI-compatible presets end to end: the openai SDK against a gateway process whose
deployments are on the compat mock, which refuses what each real host refuses and answers
as each one does. Every preset gets a request and a stream; each quirk a test of its own."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.api.hosts.conftest import CHAT_MODELS, HOST_KEY
from tests.mocks.compat_hosts import REASONING, REASONING_TOKENS
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY

HOSTS = sorted(CHAT_MODELS)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def headers_of(compat) -> dict[str, str]:
    return {k.lower(): v for k, v in compat.last.headers.items()}


@pytest.mark.parametrize("host", HOSTS)
def test_request_reasoning_and_usage(host, hosts_client, compat):
    completion = hosts_client.chat.completions.create(
        model=f"{host}-chat",
        messages=[{"role": "developer", "content": "Be brief."}, *user("think hard: hello")],
        max_completion_tokens=50,
        store=False,
        user="end-user-1",
    )
    message = completion.choices[0].message
    assert message.content == "Echo: think hard: hello"
    assert message.model_extra.get("reasoning_content") == REASONING
    usage = completion.usage
    # OpenAI's accounting whatever the host's: reasoning is part of completion_tokens
    assert usage.completion_tokens_details.reasoning_tokens == REASONING_TOKENS
    assert usage.completion_tokens == 4 + REASONING_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert compat.last.path == f"/{host}/v1/chat/completions"
    assert compat.last.body["model"] == CHAT_MODELS[host]
    assert MASTER_KEY not in json.dumps(compat.last.headers)


@pytest.mark.parametrize("host", HOSTS)
def test_stream_reasoning_and_usage(host, hosts_client, compat):
    chunks = list(
        hosts_client.chat.completions.create(
            model=f"{host}-chat",
            messages=user("think hard: stream"),
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Echo: think hard: stream"
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == REASONING
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage  # the host's figures (an estimate would count no reasoning)
    assert usage.completion_tokens_details.reasoning_tokens == REASONING_TOKENS
    assert usage.completion_tokens == 4 + REASONING_TOKENS


def test_stream_without_usage_asked_gets_none(hosts_client):
    chunks = list(
        hosts_client.chat.completions.create(
            model="together-chat", messages=user("no usage"), stream=True
        )
    )
    assert all(c.usage is None for c in chunks)  # Together's finish chunk carried it


# --- per host ------------------------------------------------------------------------------


def test_openrouter_headers_routing_fields_and_cost(hosts_client, compat):
    completion = hosts_client.chat.completions.create(
        model="openrouter-chat",
        messages=user("hi"),
        extra_body={
            "provider": {"order": ["anthropic", "openai"], "allow_fallbacks": False},
            "models": ["openai/gpt-4o", "anthropic/claude-3.5-sonnet"],
            "transforms": ["middle-out"],
        },
    )
    sent = compat.last
    headers = headers_of(compat)
    assert headers["http-referer"] == "https://app.example.com"
    assert headers["x-title"] == "Example App"
    assert headers["authorization"] == f"Bearer {HOST_KEY}"
    assert sent.body["usage"] == {"include": True}
    assert sent.body["provider"]["order"] == ["anthropic", "openai"]
    assert sent.body["transforms"] == ["middle-out"]
    assert completion.usage.model_extra["cost"] == 0.00042


def test_groq_refusals(hosts_client, compat):
    with pytest.raises(openai.BadRequestError) as refused:
        hosts_client.chat.completions.create(model="groq-chat", messages=user("x"), n=2)
    assert refused.value.code == "unsupported_parameter" and refused.value.param == "n"
    assert compat.requests == []  # refused before calling Groq


def test_deepseek_tool_loop_replays_reasoning_and_counts_cache_hits(hosts_client, compat):
    messages = user("think hard: weather in Rome?")
    first = hosts_client.chat.completions.create(
        model="deepseek-chat", messages=messages, tools=[WEATHER]
    )
    assert first.usage.prompt_tokens_details.cached_tokens == 2
    turn = first.choices[0].message
    assert turn.model_extra["reasoning_content"] == REASONING and turn.tool_calls
    follow = hosts_client.chat.completions.create(
        model="deepseek-chat",
        messages=[
            *messages,
            turn.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": turn.tool_calls[0].id, "content": "warm"},
        ],
        tools=[WEATHER],
    )
    assert follow.choices[0].message.content == "The tool returned: warm"
    assert compat.last.body["messages"][1]["reasoning_content"] == REASONING
    with pytest.raises(openai.BadRequestError) as refused:
        hosts_client.chat.completions.create(
            model="deepseek-chat", messages=user("x"), logprobs=True
        )
    assert refused.value.param == "logprobs"


def test_mistral_tool_ids_seed_and_extras(hosts_client, compat):
    history = [
        *user("weather in Lyon?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc123def456",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Lyon"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123def456", "content": "mild"},
    ]
    completion = hosts_client.chat.completions.create(
        model="mistral-chat",
        messages=history,
        tools=[WEATHER],
        seed=42,
        extra_body={"safe_prompt": True},
    )
    assert completion.choices[0].message.content == "The tool returned: mild"
    sent = compat.last.body
    rewritten = sent["messages"][1]["tool_calls"][0]["id"]
    assert len(rewritten) == 9 and rewritten.isalnum()
    assert sent["messages"][2]["tool_call_id"] == rewritten
    assert sent["random_seed"] == 42 and "seed" not in sent
    assert sent["safe_prompt"] is True
    own = hosts_client.chat.completions.create(
        model="mistral-chat", messages=user("weather?"), tools=[WEATHER]
    )
    assert own.choices[0].message.tool_calls[0].id == "T00l0Cal"[:9]  # Mistral's own, kept


def test_mistral_thinking_chunks_and_error_shape(hosts_client, compat):
    completion = hosts_client.chat.completions.create(
        model="magistral", messages=user("think hard: why?")
    )
    message = completion.choices[0].message
    assert message.content == "Echo: think hard: why?"
    assert message.model_extra["reasoning_content"] == REASONING
    chunks = list(
        hosts_client.chat.completions.create(
            model="magistral", messages=user("think hard: why?"), stream=True
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert all(isinstance(d.content, str | None) for d in deltas)
    assert (
        "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == REASONING
    )
    detail = [{"type": "missing", "loc": ["body", "messages"], "msg": "Field required"}]
    body = {
        "object": "error",
        "message": {"detail": detail},
        "type": "invalid_request_message_error",
    }
    compat.fail_next(Fault(status=422, body=body))
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        hosts_client.chat.completions.create(model="mistral-chat", messages=user("x"))
    assert "messages: Field required" in refused.value.message


def test_xai_reasoning_effort_per_model_and_charges(hosts_client, compat):
    completion = hosts_client.chat.completions.create(
        model="xai-chat",
        messages=user("hi"),
        reasoning_effort="high",
        extra_body={"search_parameters": {"mode": "auto"}},
    )
    sent = compat.last.body
    assert "reasoning_effort" not in sent  # grok-4 refuses it
    assert sent["search_parameters"] == {"mode": "auto"}
    usage = completion.usage.model_extra
    assert "cost_in_usd_ticks" not in usage
    assert usage["cost"] == pytest.approx(1_500_000 * completion.usage.total_tokens * 1e-10)
    hosts_client.chat.completions.create(
        model="grok-mini", messages=user("hi"), reasoning_effort="medium"
    )
    assert compat.last.body["reasoning_effort"] == "high"  # grok-3-mini: low or high
    with pytest.raises(openai.BadRequestError) as refused:
        hosts_client.chat.completions.create(model="xai-chat", messages=user("x"), stop=["."])
    assert refused.value.param == "stop"


def test_portkey_keys_in_its_headers(hosts_client, compat):
    hosts_client.chat.completions.create(model="portkey-chat", messages=user("hi"))
    headers = headers_of(compat)
    assert headers["x-portkey-api-key"] == HOST_KEY
    assert headers["x-portkey-virtual-key"] == "openai-prod-vk"
    assert "authorization" not in headers


@pytest.mark.parametrize("host", ["ollama", "vllm"])
def test_local_servers_need_no_key(host, hosts_client, compat):
    hosts_client.chat.completions.create(model=f"{host}-chat", messages=user("hi"))
    assert "authorization" not in headers_of(compat)


def test_embeddings_input_type_only_where_taken(hosts_client, compat):
    hosts_client.embeddings.create(
        model="nim-embed", input=["a"], extra_body={"input_type": "query"}
    )
    assert compat.last.body["input_type"] == "query"
    answer = hosts_client.embeddings.create(
        model="mistral-embed", input=["a b"], extra_body={"input_type": "query"}
    )
    assert "input_type" not in compat.last.body and len(answer.data[0].embedding) == 8
    assert compat.last.body["encoding_format"] == "float"  # base64 made by the gateway


def test_together_embeddings_and_max_tokens(hosts_gateway, compat):
    answer = httpx.post(
        f"{hosts_gateway.url}/v1/embeddings",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "together-embed", "input": "x", "encoding_format": "base64"},
        timeout=10,
    ).json()
    assert isinstance(answer["data"][0]["embedding"], str)
    assert compat.last.body["encoding_format"] == "float"
