"""Legacy text completions and moderations through the gateway with the official openai SDK:
OpenAI, vLLM and Azure, streamed and not (usage shown only to clients that ask, metered
either way), a stream broken mid-way, failover, limits and budgets; what each model serves
in /v1/models, and the wrong-endpoint 400 for chat, embeddings and completions."""

from __future__ import annotations

import openai
import pytest

from tests.api.operations_support import (
    create_key,
    start_gateway,
    wait_for_logs,
    wait_until_settled,
)
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY


@pytest.fixture(scope="module")
def env(mocks, tmp_path_factory):
    yield from start_gateway(mocks, tmp_path_factory, "completions")


@pytest.fixture
def gw(env):
    return env[0]


def sdk(gw, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def test_completion_and_its_stream_agree(gw, openai_mock):
    key = create_key(gw)
    client = sdk(gw, key["key"])
    whole = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=5)
    assert whole.object == "text_completion" and whole.choices[0].finish_reason == "length"
    assert openai_mock.last.body == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "Say hi",
        "max_tokens": 5,
    }
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=5, stream=True
        )
    )
    assert all(chunk.choices for chunk in chunks)  # no usage chunk: the client asked for none
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert openai_mock.last.body["stream_options"] == {"include_usage": True}
    streamed, plain = wait_for_logs(gw, key["id"], 2)
    assert streamed["stream"] and not plain["stream"]
    for entry in (streamed, plain):
        assert (entry["prompt_tokens"], entry["completion_tokens"]) == (2, 5)
        assert not entry["usage_estimated"] and entry["unit"] is None
        assert entry["cost_usd"] == pytest.approx((2 * 1.5 + 5 * 2.0) / 1e6, abs=1e-7)


def test_stream_usage_for_clients_that_ask(gw):
    chunks = list(
        sdk(gw).completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="Count",
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3


def test_vllm_and_azure(gw, openai_mock):
    result = sdk(gw).completions.create(
        model="vllm-llama", prompt=["one", "two"], n=2, max_tokens=4
    )
    assert len(result.choices) == 4
    assert openai_mock.last.body["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    sdk(gw).completions.create(model="azure-instruct", prompt="hello", max_tokens=2)
    assert openai_mock.last.path == "/openai/deployments/instruct-dep/completions"


def test_broken_stream_ends_with_an_error_event(gw, openai_mock):
    key = create_key(gw)
    openai_mock.fail_next(Fault(cut_after=2))
    stream = sdk(gw, key["key"]).completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Go on", max_tokens=10, stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert entry["error_code"] == "upstream_unavailable"
    assert entry["usage_estimated"] and entry["completion_tokens"] > 0


def test_failover_limits_and_budget(gw, openai_mock):
    raw = sdk(gw).completions.with_raw_response.create(
        model="completion-failover", prompt="x", max_tokens=2
    )
    assert raw.headers["x-perpetuo-attempts"] == "2"
    chunks = list(
        sdk(gw).completions.create(
            model="completion-failover", prompt="x", max_tokens=2, stream=True
        )
    )
    assert chunks

    limited = sdk(gw, create_key(gw, limits={"rpm": 1})["key"])
    limited.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", max_tokens=1)
    with pytest.raises(openai.RateLimitError):
        limited.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", max_tokens=1)

    key = create_key(gw, limits={"budget_usd": 0.00005, "budget_period": "daily"})
    budgeted = sdk(gw, key["key"])
    budgeted.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", max_tokens=20)
    wait_until_settled(gw, key["id"], 1)
    with pytest.raises(openai.APIStatusError) as exc:  # 20 tokens at $2/M no longer fit
        budgeted.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", max_tokens=20)
    assert exc.value.status_code == 402


def test_moderations(gw, openai_mock):
    key = create_key(gw)
    result = sdk(gw, key["key"]).moderations.create(
        model="omni-moderation-latest", input=["a kind word", "trigger flag"]
    )
    assert [r.flagged for r in result.results] == [False, True]
    assert result.results[1].categories.violence
    assert openai_mock.last.path == "/v1/moderations"
    (entry,) = wait_for_logs(gw, key["id"], 1)
    assert entry["endpoint"] == "moderations" and entry["cost_usd"] == 0
    assert entry["prompt_tokens"] > 0 and entry["usage_estimated"]
    with pytest.raises(openai.PermissionDeniedError):
        sdk(gw, create_key(gw, scopes=["chat"])["key"]).moderations.create(
            model="omni-moderation-latest", input="x"
        )


def test_models_say_what_they_serve(gw):
    models = {m.id: m.model_extra["capabilities"] for m in sdk(gw).models.list()}
    served = {name: {e for e, on in caps.items() if on} for name, caps in models.items()}
    assert served["gpt-4o-mini"] == {"chat"}  # OpenAI's chat models have no /completions
    # A model neither the catalog nor its name places: all its provider type offers.
    assert served["vllm-llama"] == {"chat", "completions", "embeddings", "rerank", "transcriptions"}
    assert served["gpt-3.5-turbo-instruct"] == {"completions"}
    assert served["text-embedding-3-small"] == {"embeddings"}
    assert served["dall-e-3"] == served["imagen"] == served["azure-image"] == {"images"}
    assert served["gemini-image"] == {"chat", "images"}
    assert served["whisper-1"] == {"transcriptions"} and served["tts-1"] == {"speech"}
    assert served["rerank-v3.5"] == served["vllm-rerank"] == {"rerank"}
    assert served["omni-moderation-latest"] == {"moderations"}
    one = sdk(gw).models.retrieve("whisper-1")
    assert one.model_extra["capabilities"]["transcriptions"] is True


def test_wrong_endpoint_is_a_400_before_any_upstream_call(gw, openai_mock):
    client = sdk(gw)
    with pytest.raises(openai.BadRequestError) as exc:
        client.completions.create(model="gpt-4o-mini", prompt="x")
    assert exc.value.code == "endpoint_not_supported" and exc.value.param == "model"
    with pytest.raises(openai.BadRequestError) as exc:
        client.embeddings.create(model="gpt-4o-mini", input="x")
    assert "does not serve embeddings: it serves chat" in exc.value.message
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="text-embedding-3-small", messages=[{"role": "user", "content": "x"}]
        )
    assert "serves embeddings" in exc.value.message
    assert not openai_mock.requests
