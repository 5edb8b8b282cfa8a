"""What each deployment and alias serves: the config's `endpoints`, else the catalog's mode,
the model's name and the provider type; the router tries only deployments that serve the
request's endpoint, and a fallback alias for other work is passed over."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpetuo.config import ConfigError, load_config
from perpetuo.metering.pricing import default_catalog
from perpetuo.providers.registry import adapter_for
from perpetuo.routing.capabilities import deployment_endpoints, mode_of
from perpetuo.routing.table import RoutingTable


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        ("gpt-4o-mini-2024-07-18", "chat"),  # the catalog, after normalizing
        ("text-embedding-3-large", "embedding"),
        ("omni-moderation-latest", "moderation"),
        ("imagen-4.0-generate-001", "image"),
        ("gemini-2.5-flash-image-preview", "chat_image"),
        ("cohere.rerank-v3-5:0", "rerank"),
        ("nomic-embed-text", "embedding"),  # the name
        ("BAAI/bge-reranker-v2-m3", "rerank"),
        ("Systran/faster-whisper-large-v3", "transcription"),
        ("hexgrad/kokoro-tts", "speech"),
        ("stabilityai/stable-diffusion-xl-base-1.0", "image"),
        ("meta-llama/Llama-3.1-8B-Instruct", None),  # nothing known
        ("my-azure-deployment", None),
    ],
)
def test_what_a_model_is_for(model, mode):
    assert mode_of(model, default_catalog()) == mode


def test_the_provider_type_decides_what_a_model_kind_gets():
    catalog = default_catalog()
    assert deployment_endpoints(adapter_for("openai"), "gpt-4o", catalog) == {"chat"}
    assert deployment_endpoints(adapter_for("vllm"), "gpt-4o", catalog) == {"chat", "completions"}
    assert deployment_endpoints(adapter_for("anthropic"), "whatever", catalog) == {"chat"}
    assert deployment_endpoints(adapter_for("demo"), "perpetuo-demo", catalog) == {
        "chat",
        "embeddings",
    }
    declared = deployment_endpoints(adapter_for("azure"), "dep", catalog, ["speech", "rerank"])
    assert declared == {"speech"}  # Azure offers no rerank


def table(tmp_path: Path, models: str) -> RoutingTable:
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers:\n  o: {type: openai, api_key: k}\n  a: {type: anthropic, api_key: k}\n"
        f"models:\n{models}"
    )
    return RoutingTable.build(load_config(path, env={}), str(path))


def test_declared_endpoints_and_mixed_aliases(tmp_path):
    built = table(
        tmp_path,
        "  mixed: {deployments: [{provider: a, model: claude-x}, {provider: o, model: dall-e-3}]}\n"
        "  voice: {deployments: [{provider: o, model: my-tts}], endpoints: [speech]}\n",
    )
    mixed = built.get("mixed")
    assert mixed.endpoints == {"chat", "images"} and not mixed.uniform
    assert [d.model for g in mixed.groups_serving("images") for d in g] == ["dall-e-3"]
    assert [d.model for g in mixed.groups_serving("chat") for d in g] == ["claude-x"]
    assert built.get("voice").endpoints == {"speech"}
    with pytest.raises(ConfigError) as exc:
        table(tmp_path, "  r: {deployments: [{provider: a, model: c}], endpoints: [rerank]}\n")
    assert "models.r.endpoints" in str(exc.value) and "rerank" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        table(tmp_path, "  r: {deployments: [{provider: o, model: c}], endpoints: [telepathy]}\n")
    assert "endpoints" in str(exc.value)
