"""Providers' model lists, read into ListedModel pages (for model discovery).

Each reader takes one provider format's answer: OpenAI's `{"data": [{"id"}]}` (and the
bare list Together answers, and the extra fields hosts add: context lengths under several
names, OpenRouter's per-token prices), Anthropic's pages (`has_more`, `last_id`), Gemini's
and Vertex AI's (`nextPageToken`), Cohere's (`next_page_token`) and Bedrock's
ListFoundationModels. What a list says a model serves becomes endpoints when it says so.
"""

from __future__ import annotations

import math
from typing import Any

from perpetuo.providers.base import decode_json
from perpetuo.providers.listing import ListedModel, ModelPage
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import MAX_TOKENS

E = Endpoint
_CONTEXT_FIELDS = ("context_length", "context_window", "max_context_length", "max_model_len")
_GEMINI_METHODS = {
    "generateContent": E.CHAT,
    "embedContent": E.EMBEDDINGS,
    "batchEmbedContents": E.EMBEDDINGS,
    "predict": E.IMAGES,
}
_COHERE_ENDPOINTS = {"chat": E.CHAT, "embed": E.EMBEDDINGS, "rerank": E.RERANK}
_BEDROCK_OUTPUTS = {"TEXT": E.CHAT, "EMBEDDING": E.EMBEDDINGS, "IMAGE": E.IMAGES}


def openai_page(body: bytes) -> ModelPage:
    data = decode_json(body, "model list")
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise _unreadable()
    models = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        window = next((_count(item.get(f)) for f in _CONTEXT_FIELDS if f in item), None)
        top = item.get("top_provider") if isinstance(item.get("top_provider"), dict) else {}
        output = _count(item.get("max_completion_tokens")) or _count(
            top.get("max_completion_tokens")
        )
        pricing = item.get("pricing") if isinstance(item.get("pricing"), dict) else {}
        models.append(
            ListedModel(
                item["id"],
                context_window=window,
                max_output=output,
                input_price=_per_million(pricing.get("prompt")),
                output_price=_per_million(pricing.get("completion")),
            )
        )
    return ModelPage(models)


def anthropic_page(body: bytes) -> ModelPage:
    data = _object(body)
    models = [
        ListedModel(item["id"], endpoints=frozenset({E.CHAT}))
        for item in _items(data, "data")
        if isinstance(item.get("id"), str)
    ]
    more = data.get("has_more") is True and isinstance(data.get("last_id"), str)
    return ModelPage(models, data["last_id"] if more else None)


def gemini_page(body: bytes) -> ModelPage:
    data = _object(body)
    models = []
    for item in _items(data, "models"):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        methods = item.get("supportedGenerationMethods")
        served = {_GEMINI_METHODS[m] for m in methods or () if m in _GEMINI_METHODS}
        inputs, outputs = _count(item.get("inputTokenLimit")), _count(item.get("outputTokenLimit"))
        models.append(
            ListedModel(
                name.removeprefix("models/"),
                endpoints=frozenset(served) if served else None,
                context_window=inputs,
                max_output=outputs,
            )
        )
    return ModelPage(models, _token(data.get("nextPageToken")))


def vertex_page(body: bytes) -> ModelPage:
    """Publisher models (`publishers/google/models/gemini-2.5-flash`)."""
    data = _object(body)
    models = [
        ListedModel(item["name"].rsplit("/", 1)[-1])
        for item in _items(data, "publisherModels")
        if isinstance(item.get("name"), str)
    ]
    return ModelPage(models, _token(data.get("nextPageToken")))


def cohere_page(body: bytes) -> ModelPage:
    data = _object(body)
    models = []
    for item in _items(data, "models"):
        if not isinstance(item.get("name"), str) or item.get("is_deprecated") is True:
            continue
        named = item.get("endpoints") or ()
        served = {_COHERE_ENDPOINTS[e] for e in named if e in _COHERE_ENDPOINTS}
        models.append(
            ListedModel(
                item["name"],
                endpoints=frozenset(served) if served else None,
                context_window=_count(item.get("context_length")),
            )
        )
    return ModelPage(models, _token(data.get("next_page_token")))


def bedrock_page(body: bytes) -> ModelPage:
    """ListFoundationModels: only models callable on demand (the others need a
    provisioned throughput or an inference profile id)."""
    data = _object(body)
    models = []
    for item in _items(data, "modelSummaries"):
        model_id = item.get("modelId")
        kinds = item.get("inferenceTypesSupported") or ()
        if not isinstance(model_id, str) or (kinds and "ON_DEMAND" not in kinds):
            continue
        outputs = item.get("outputModalities") or ()
        served = {_BEDROCK_OUTPUTS[o] for o in outputs if o in _BEDROCK_OUTPUTS}
        models.append(ListedModel(model_id, endpoints=frozenset(served) if served else None))
    return ModelPage(models)


def _object(body: bytes) -> dict[str, Any]:
    data = decode_json(body, "model list")
    if not isinstance(data, dict):
        raise _unreadable()
    return data


def _items(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = data.get(name)
    if items is None:
        return []
    if not isinstance(items, list):
        raise _unreadable()
    return [item for item in items if isinstance(item, dict)]


def _count(value: Any) -> int | None:
    if type(value) is float and math.isfinite(value) and value.is_integer():
        value = int(value)
    return value if type(value) is int and 0 < value <= MAX_TOKENS else None


def _per_million(value: Any) -> float | None:
    """OpenRouter's prices are USD per token, as decimal strings."""
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return round(price * 1_000_000, 6) if math.isfinite(price) and price >= 0 else None


def _token(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _unreadable() -> UpstreamError:
    return UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream model list is unreadable")
