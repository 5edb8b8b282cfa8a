"""The pricing catalog for Cohere, Mistral, xAI, DeepSeek and the open-model hosts: a host's
own entry (`provider_type:model`) wins for that host's deployments and only for them; the
models the presets point at have prices and context windows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from perpetuo.config.model import GatewayConfig
from perpetuo.metering.pricing import PricingCatalog, default_catalog
from perpetuo.routing.table import RoutingTable


def test_host_entries_win_for_their_own_provider_type_only():
    catalog = PricingCatalog.from_json(
        {
            "models": {
                "gpt-oss-120b": {"input": 1.0, "output": 1.0, "context_window": 1000},
                "groq:openai/gpt-oss-120b": {
                    "input": 0.15,
                    "output": 0.75,
                    "context_window": 131072,
                },
            }
        }
    )
    assert catalog.lookup("openai/gpt-oss-120b", "groq").input == Decimal("0.15")
    assert catalog.lookup("openai/gpt-oss-120b", "together").input == Decimal("1.0")
    assert catalog.lookup("openai/gpt-oss-120b").input == Decimal("1.0")
    assert catalog.context_window_for("openai/gpt-oss-120b", "groq") == 131072
    assert catalog.context_window_for("openai/gpt-oss-120b") == 1000


@pytest.mark.parametrize(
    ("provider", "model", "price", "window"),
    [
        ("cohere", "command-a-03-2025", ("2.5", "10.0"), 256000),
        ("cohere", "command-r7b-12-2024", ("0.0375", "0.15"), 128000),
        ("mistral", "mistral-large-latest", ("2.0", "6.0"), 131072),
        ("mistral", "magistral-medium-latest", ("2.0", "5.0"), 131072),
        ("xai", "grok-4-0709", ("3.0", "15.0"), 256000),
        ("xai", "grok-3-mini", ("0.3", "0.5"), 131072),
        ("deepseek", "deepseek-reasoner", ("0.28", "0.42"), 128000),
        ("groq", "llama-3.3-70b-versatile", ("0.59", "0.79"), 131072),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", ("0.88", "0.88"), 131072),
        ("fireworks", "accounts/fireworks/models/deepseek-v3", ("0.9", "0.9"), 131072),
        ("bedrock", "cohere.command-r-plus-v1:0", ("3.0", "15.0"), 128000),
        ("openrouter", "anthropic/claude-sonnet-4", ("3.0", "15.0"), 200000),  # the vendor's
    ],
)
def test_preset_models_are_priced(provider, model, price, window):
    catalog = default_catalog()
    found = catalog.lookup(model, provider)
    assert found is not None
    assert (found.input, found.output) == (Decimal(price[0]), Decimal(price[1]))
    assert catalog.context_window_for(model, provider) == window


def test_embedding_models_are_embeddings():
    catalog = default_catalog()
    for provider, model in [
        ("cohere", "embed-v4.0"),
        ("cohere", "embed-multilingual-v3.0"),
        ("mistral", "mistral-embed"),
        ("together", "BAAI/bge-base-en-v1.5"),
    ]:
        assert catalog.mode_for(model, provider) == "embedding"


def test_deployments_get_their_hosts_prices():
    config = GatewayConfig.model_validate(
        {
            "providers": {
                "groq-main": {"type": "groq", "api_key": "k"},
                "together-main": {"type": "together", "api_key": "k"},
            },
            "models": {
                "oss": {
                    "deployments": [
                        {"provider": "groq-main", "model": "openai/gpt-oss-120b"},
                        {"provider": "together-main", "model": "openai/gpt-oss-120b"},
                    ]
                }
            },
        }
    )
    groq, together = RoutingTable.build(config).get("oss").deployments  # type: ignore[union-attr]
    assert groq.price.output == Decimal("0.75") and groq.max_output_tokens == 65536
    assert together.price.output == Decimal("0.6") and together.max_output_tokens is None
