"""What each deployment serves (chat, embeddings, images, ...: schema/endpoints.py).

The rule, first match wins:
1. the alias's `endpoints:` in the config, as far as each deployment's provider type offers
   them (an endpoint none of them offers is a config error);
2. the pricing catalog's `mode` for the deployment's model;
3. the model's name (`...embed...` embeds, `whisper`/`...transcribe` transcribes, `tts`
   speaks, `...rerank...` reranks, `dall-e`/`gpt-image`/`imagen` draw, ...);
4. nothing known (local models, Azure deployment names): everything its provider type
   offers, as before aliases declared anything.
Steps 2 and 3 also go through the provider type: OpenAI's chat models do not serve
/completions, vLLM's do.
"""

from __future__ import annotations

import re

from perpetuo.metering.pricing import PricingCatalog, normalize_model
from perpetuo.providers.base import ProviderAdapter
from perpetuo.schema.endpoints import MODES

# Name patterns, tried in order, and the mode they mean.
NAME_MODES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"rerank"), "rerank"),
    (re.compile(r"embed"), "embedding"),
    (re.compile(r"moderation"), "moderation"),
    (re.compile(r"whisper|transcribe"), "transcription"),
    (re.compile(r"(?:^|[-_.])tts(?:$|[-_.])"), "speech"),
    (re.compile(r"^gemini-.*image"), "chat_image"),
    (re.compile(r"dall-e|gpt-image|imagen|stable-diffusion|sdxl|^flux"), "image"),
)


def mode_of(model: str, catalog: PricingCatalog) -> str | None:
    """What the model is for, from the catalog or its name; None when neither says."""
    mode = catalog.mode_for(model)
    if mode is not None:
        return mode
    name = normalize_model(model)
    for pattern, named in NAME_MODES:
        if pattern.search(name):
            return named
    return None


def deployment_endpoints(
    adapter: ProviderAdapter,
    model: str,
    catalog: PricingCatalog,
    declared: list[str] | None = None,
) -> frozenset[str]:
    """`declared`: the alias's `endpoints:`, when the config sets it."""
    if declared:
        return frozenset(declared) & adapter.endpoints
    mode = mode_of(model, catalog)
    return adapter.endpoints_for(MODES[mode] if mode is not None else None)
