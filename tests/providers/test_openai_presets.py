"""OpenAI-compatible presets as data: per-model rules, reasoning_effort mapping, answers made
chat form, and the provider-reported charge metered only where it may be trusted."""

from __future__ import annotations

import json

import msgspec
import pytest

from perpetuo.config.model import DeploymentConfig, PriceConfig
from perpetuo.metering.recorder import cost_micros
from perpetuo.providers import openai_answers
from perpetuo.providers.base import Target
from perpetuo.providers.openai_requests import short_id, with_tool_ids
from perpetuo.providers.presets import OPENAI_PRESETS, nearest_effort
from perpetuo.providers.registry import adapter_for
from perpetuo.routing.table import Deployment
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.errors import UpstreamError
from perpetuo.schema.usage import Usage
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.url import URL


def chat(**fields) -> ChatCompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return msgspec.convert({"model": "a", **fields}, ChatCompletionRequest)


def sent(host: str, model: str, **fields) -> dict:
    target = Target("p", host, model, URL.parse("https://host.example/v1"), "k")
    call = adapter_for(host).chat_request(chat(**fields), target, {})
    return json.loads(call.body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("asked", "offered", "expected"),
    [
        ("medium", ("low", "high"), "high"),  # a tie goes up
        ("minimal", ("low", "high"), "low"),
        ("xhigh", ("none", "low", "medium", "high"), "high"),
        ("none", ("low", "medium", "high"), "low"),
        ("high", (), None),
        ("turbo", ("low",), "turbo"),  # unknown values are the host's to judge
    ],
)
def test_nearest_effort(asked, offered, expected):
    assert nearest_effort(asked, offered) == expected


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        ("grok-3-mini", "high"),
        ("grok-3-mini-fast-latest", "high"),
        ("grok-4.3", "medium"),
        ("grok-4.5-latest", "medium"),
        ("grok-4-0709", None),
        ("grok-4-fast-non-reasoning", None),
        ("grok-code-fast-1", None),
        ("grok-3", None),
        ("grok-2-vision-1212", None),
    ],
)
def test_xai_reasoning_effort_by_model(model, effort):
    body = sent("xai", model, reasoning_effort="medium")
    assert body.get("reasoning_effort") == effort


def test_xai_reasoning_models_drop_penalties_and_refuse_stop():
    body = sent("xai", "grok-4", presence_penalty=0.5, temperature=0.2)
    assert "presence_penalty" not in body and body["temperature"] == 0.2
    assert sent("xai", "grok-4-fast-non-reasoning", presence_penalty=0.5)["presence_penalty"] == 0.5
    with pytest.raises(UpstreamError) as refused:
        sent("xai", "grok-3-mini", stop="x")
    assert refused.value.param == "stop" and "grok-3-mini" in refused.value.message


def test_reasoning_in_history_kept_only_where_the_host_wants_it():
    turn = {"role": "assistant", "content": "ok", "reasoning_content": "because"}
    messages = [{"role": "user", "content": "a"}, turn, {"role": "user", "content": "b"}]
    assert sent("deepseek", "deepseek-chat", messages=messages)["messages"][1] == {
        "role": "assistant",
        "content": "ok",
        "reasoning_content": "because",
    }
    for host in ("openai", "groq", "mistral"):
        assert "reasoning_content" not in sent(host, "m", messages=messages)["messages"][1]


def test_tool_ids_rewritten_consistently_and_only_when_needed():
    assert short_id("call_1", 9) == short_id("call_1", 9) != short_id("call_2", 9)
    assert len(short_id("call_1", 9)) == 9 and short_id("call_1", 9).isalnum()
    request = chat(
        messages=[
            {"role": "user", "content": "a"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    },
                    {
                        "id": "AbCdE1234",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "x"},
            {"role": "tool", "tool_call_id": "AbCdE1234", "content": "y"},
        ]
    )
    out = with_tool_ids(request.messages, 9)
    assert [c.id for c in out[1].tool_calls] == [short_id("call_1", 9), "AbCdE1234"]
    assert [out[2].tool_call_id, out[3].tool_call_id] == [short_id("call_1", 9), "AbCdE1234"]


def test_answers_made_chat_form():
    quirks = OPENAI_PRESETS["mistral"]
    data = {
        "choices": [
            {
                "message": {
                    "content": [
                        {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                        {"type": "text", "text": "yes"},
                    ]
                }
            }
        ]
    }
    openai_answers.fix_completion(data, quirks)
    assert data["choices"][0]["message"] == {"content": "yes", "reasoning_content": "hm"}
    groq = OPENAI_PRESETS["groq"]
    chunk = {"choices": [{"delta": {"reasoning": "r"}}], "x_groq": {"usage": {"prompt_tokens": 3}}}
    openai_answers.fix_chunk(chunk, groq)
    assert chunk["choices"][0]["delta"] == {"reasoning_content": "r"}
    assert chunk["usage"] == {"prompt_tokens": 3}
    usage = {"prompt_tokens": 10, "prompt_cache_hit_tokens": 6, "prompt_cache_miss_tokens": 4}
    openai_answers.fix_usage(usage, OPENAI_PRESETS["deepseek"])
    assert usage["prompt_tokens_details"] == {"cached_tokens": 6}
    xai = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 18,
        "completion_tokens_details": {"reasoning_tokens": 3},
        "cost_in_usd_ticks": 2_500_000_000,
    }
    openai_answers.fix_usage(xai, OPENAI_PRESETS["xai"])
    assert (xai["completion_tokens"], xai["total_tokens"], xai["cost"]) == (8, 18, 0.25)
    assert "cost_in_usd_ticks" not in xai  # it would read as an absurd token count


@pytest.mark.parametrize(
    ("cost", "read"),
    [(0.0042, 0.0042), (3, 3.0), (-1, None), (float("nan"), None), (5000.0, None), ("1", None)],
)
def test_reported_cost_is_read_only_when_believable(cost, read):
    assert Usage.from_openai({"prompt_tokens": 1, "cost": cost}).cost_usd == read


def deployment(host: str, model: str, *, tenant: bool = False, price: PriceConfig | None = None):
    egress = EgressPolicy() if tenant else None
    target = Target("p", host, model, URL.parse("https://h.example/v1"), "k", egress=egress)
    config = DeploymentConfig(provider="p", model=model, price=price)
    return Deployment(f"p/{model}", target, adapter_for(host), config)


def test_reported_charge_metered_for_operator_deployments_only():
    usage = Usage(prompt_tokens=1000, completion_tokens=1000, cost_usd=0.5)
    assert cost_micros(deployment("openrouter", "openai/gpt-4o-mini"), usage) == 500_000
    # a tenant's upstream could claim anything: the catalog price is charged instead
    tenant = cost_micros(deployment("openrouter", "openai/gpt-4o-mini", tenant=True), usage)
    assert tenant == 750  # gpt-4o-mini: 0.15 + 0.60 per million
    priced = deployment("openrouter", "x", price=PriceConfig(input=1.0, output=1.0))
    assert cost_micros(priced, usage) == 2000  # the operator's own price wins
    assert cost_micros(deployment("groq", "openai/gpt-4o-mini"), usage) == 750  # reports none
