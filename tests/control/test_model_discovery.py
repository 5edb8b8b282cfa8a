"""Model discovery: every page of a provider's list, its refusals, and the alias proposals
(names, prices and limits from the catalog or the list, YAML the config file accepts)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from perpetuo.config.model import GatewayConfig
from perpetuo.control import model_discovery
from perpetuo.control.model_discovery import alias_name, as_yaml, list_models, proposals
from perpetuo.metering.pricing import default_catalog
from perpetuo.providers.base import Target
from perpetuo.providers.listing import ListedModel
from perpetuo.providers.registry import adapter_for
from perpetuo.routing.table import RoutingTable
from perpetuo.schema.errors import UpstreamError
from perpetuo.transport.url import URL


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    async def read(self) -> bytes:
        return self.body


@dataclass
class PagedClient:
    """Answers each model-list request with the next canned answer, recording the URLs."""

    answers: list[Answer]
    urls: list[str] = field(default_factory=list)

    async def request(self, method: str, url: URL, *args: Any, **kwargs: Any) -> Answer:
        self.urls.append(str(url))
        return self.answers.pop(0)


def cohere_answer(names: list[str], token: str | None) -> Answer:
    models = [{"name": n, "endpoints": ["chat"]} for n in names]
    return Answer(200, json.dumps({"models": models, "next_page_token": token}).encode())


COHERE = Target("co", "cohere", "-", URL.parse("https://api.cohere.com"), "k")


async def test_every_page_is_read():
    client = PagedClient([cohere_answer(["a", "b"], "t1"), cohere_answer(["c"], None)])
    models = await list_models(client, adapter_for("cohere"), COHERE)  # type: ignore[arg-type]
    assert [m.id for m in models] == ["a", "b", "c"]
    assert client.urls[1].endswith("page_token=t1")


async def test_a_cursor_that_repeats_or_never_ends_stops(monkeypatch):
    client = PagedClient([cohere_answer(["a"], "same"), cohere_answer(["b"], "same")])
    models = await list_models(client, adapter_for("cohere"), COHERE)  # type: ignore[arg-type]
    assert [m.id for m in models] == ["a", "b"]
    monkeypatch.setattr(model_discovery, "MAX_PAGES", 3)
    endless = PagedClient([cohere_answer([f"m{i}"], f"t{i}") for i in range(10)])
    models = await list_models(endless, adapter_for("cohere"), COHERE)  # type: ignore[arg-type]
    assert len(models) == 3 and len(endless.urls) == 3


async def test_refusals_are_the_providers_classified_errors():
    refused = Answer(498, json.dumps({"id": "x", "message": "invalid api token"}).encode())
    with pytest.raises(UpstreamError) as caught:
        await list_models(PagedClient([refused]), adapter_for("cohere"), COHERE)  # type: ignore[arg-type]
    assert caught.value.kind == "auth" and caught.value.message == "invalid api token"
    with pytest.raises(UpstreamError) as empty:
        await list_models(PagedClient([cohere_answer([], None)]), adapter_for("cohere"), COHERE)  # type: ignore[arg-type]
    assert empty.value.kind == "not_found"


@pytest.mark.parametrize(
    ("model", "alias"),
    [
        ("accounts/fireworks/models/deepseek-v3", "deepseek-v3"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("Qwen/Qwen3-8B", "qwen3-8b"),
        ("llama3.2:latest", "llama3.2:latest"),
        ("weird name!", "weird-name"),
    ],
)
def test_alias_names(model, alias):
    assert alias_name(model) == alias


def test_proposals_take_prices_from_the_catalog_then_the_list():
    found = proposals(
        [
            ListedModel("openai/gpt-oss-120b", context_window=131072),
            ListedModel("x-ai/unknown-model", input_price=1.5, output_price=2.0),
            ListedModel("embed-v4.0"),
        ],
        "groq-main",
        "groq",
        default_catalog(),
    )
    by_alias = {p.alias: p.view() for p in found}
    assert by_alias["gpt-oss-120b"] == {
        "alias": "gpt-oss-120b",
        "provider": "groq-main",
        "model": "openai/gpt-oss-120b",
        "endpoints": [],
        "input_price": 0.15,  # Groq's own entry
        "output_price": 0.75,
        "max_output_tokens": 65536,
        "context_window": 131072,
    }
    assert (
        by_alias["unknown-model"]["input_price"],
        by_alias["unknown-model"]["output_price"],
    ) == (1.5, 2.0)
    assert by_alias["embed-v4.0"]["endpoints"] == ["embeddings"]  # the catalog's mode


def test_models_that_would_share_an_alias_keep_their_whole_id():
    found = proposals(
        [ListedModel("meta/llama-3"), ListedModel("other/llama-3")],
        "p",
        "openrouter",
        default_catalog(),
    )
    assert [p.alias for p in found] == ["meta-llama-3", "other-llama-3"]


def test_yaml_is_a_models_section_the_config_accepts():
    found = proposals(
        [
            ListedModel("command-a-03-2025", endpoints=frozenset({"chat"})),
            ListedModel("embed-v4.0", endpoints=frozenset({"embeddings"})),
            ListedModel("rerank-v3.5", endpoints=frozenset({"rerank"})),
            ListedModel("true"),  # a name YAML would read as a boolean
        ],
        "cohere-main",
        "cohere",
        default_catalog(),
    )
    text = as_yaml(found)
    assert "command-a-03-2025:  # $2.5 in, $10 out per 1M tokens; 256,000-token context" in text
    section = yaml.safe_load(text)
    config = GatewayConfig.model_validate(
        {"providers": {"cohere-main": {"type": "cohere", "api_key": "k"}}, **section}
    )
    table = RoutingTable.build(config)
    assert set(table.aliases) == {"command-a-03-2025", "embed-v4.0", "rerank-v3.5", "true"}
    assert table.get("embed-v4.0").endpoints == {"embeddings"}  # type: ignore[union-attr]
    assert table.get("rerank-v3.5").endpoints == {"rerank"}  # type: ignore[union-attr]
    assert table.get("true").deployments[0].model == "true"  # type: ignore[union-attr]
