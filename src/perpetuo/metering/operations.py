"""What a call other than chat used and what it cost, in the unit its provider bills:
images, seconds of audio, characters spoken, rerank searches, or tokens.

Figures come from the answer where the provider reports them (gpt-image token usage, a
transcript's duration, Cohere's billed search units); otherwise they are estimated from the
request and marked so. `worst_cost` prices a request before it is sent, for budgets: the
dearest deployment that may serve it, at the largest size the request allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perpetuo.metering.audio import estimated_seconds, last_cue_seconds
from perpetuo.metering.pricing import (
    Price,
    UnitPrices,
    cost_usd,
    default_catalog,
    to_micro_usd,
)
from perpetuo.metering.tokens import estimate_text_tokens
from perpetuo.providers.base import OperationAnswer
from perpetuo.routing.table import Deployment
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.operations import OperationRequest
from perpetuo.schema.usage import Usage, token_count

_ZERO = Decimal(0)
_MILLION = Decimal(1_000_000)
DEFAULT_COMPLETION_TOKENS = 16  # OpenAI's default max_tokens for /completions
SEARCH_DOCUMENTS = 100  # Cohere bills one search per query and up to 100 documents


@dataclass(slots=True)
class Metered:
    usage: Usage
    unit: str | None = None  # images | seconds | characters | searches (None: tokens)
    quantity: float = 0.0
    cost: Decimal = _ZERO

    @property
    def cost_micros(self) -> int:
        return to_micro_usd(self.cost)


def prices_of(deployment: Deployment) -> tuple[Price | None, UnitPrices | None]:
    config = deployment.config.price
    return deployment.price, default_catalog().units_for(deployment.model, config)


def meter(
    request: OperationRequest,
    answer: OperationAnswer | None,
    deployment: Deployment,
    streamed: Usage | None = None,
    streamed_text: str = "",
) -> Metered:
    """What the request used on `deployment`. `answer` is None for streamed answers, whose
    usage (when the stream reported one) and text are given instead."""
    price, units = prices_of(deployment)
    data = answer.data if answer is not None and answer.data is not None else {}
    endpoint = request.endpoint
    if endpoint is Endpoint.IMAGES:
        return _images(request, data, price, units)
    if endpoint is Endpoint.TRANSCRIPTIONS:
        return _transcription(request, data, answer.text if answer else None, price, units)
    if endpoint is Endpoint.SPEECH:
        characters = len(str(request.param("input") or ""))
        rate = units.per_million_characters if units else None
        cost = rate * characters / _MILLION if rate is not None else _ZERO
        return Metered(Usage(), "characters", characters, cost)
    if endpoint is Endpoint.RERANK:
        return _rerank(request, data, price, units)
    usage = streamed or Usage.from_openai(data.get("usage"))
    if usage is None:
        completion = streamed_text or "".join(
            str(c.get("text") or "") for c in data.get("choices") or () if isinstance(c, dict)
        )
        usage = Usage(
            prompt_tokens=prompt_tokens(request),
            completion_tokens=estimate_text_tokens(completion),
            estimated=True,
        )
    return Metered(usage, cost=cost_usd(usage, price) if price is not None else _ZERO)


def worst_cost(request: OperationRequest, deployments: tuple[Deployment, ...]) -> int:
    """Micro-dollars: the most this request may cost on any deployment that may serve it."""
    worst = _ZERO
    endpoint = request.endpoint
    for deployment in deployments:
        if endpoint in deployment.endpoints:
            price, units = prices_of(deployment)
            worst = max(worst, _estimate(request, price, units))
    return to_micro_usd(worst)


def prompt_tokens(request: OperationRequest) -> int:
    """The request's input in estimated tokens (rate limits and estimates)."""
    endpoint = request.endpoint
    if endpoint is Endpoint.RERANK:
        texts = [request.param("query"), *(request.param("documents") or ())]
    elif endpoint is Endpoint.MODERATIONS:
        texts = _as_list(request.param("input"))
    elif endpoint is Endpoint.COMPLETIONS:
        texts = _as_list(request.param("prompt"))
    elif endpoint is Endpoint.SPEECH:
        texts = [request.param("input")]
    else:
        texts = [request.param("prompt")]
    total = 0
    for text in texts:
        if isinstance(text, dict):
            text = text.get("text")
        if isinstance(text, str):
            total += estimate_text_tokens(text)
        elif isinstance(text, list):
            total += len(text)  # token ids
        elif isinstance(text, int):
            total += 1
    return total


def output_tokens(request: OperationRequest) -> int:
    """Tokens the answer may have (text completions only)."""
    if request.endpoint is not Endpoint.COMPLETIONS:
        return 0
    limit = request.param("max_tokens")
    limit = limit if isinstance(limit, int) and limit > 0 else DEFAULT_COMPLETION_TOKENS
    return limit * _count(request.param("n"))


# -- per kind ----------------------------------------------------------------------------


def _images(
    request: OperationRequest, data: dict[str, Any], price: Price | None, units: UnitPrices | None
) -> Metered:
    images = data.get("data")
    count = len(images) if isinstance(images, list) and images else _count(request.param("n"))
    reported = data.get("usage")
    if isinstance(reported, dict) and (given := token_count(reported.get("input_tokens"))):
        output = token_count(reported.get("output_tokens")) or 0
        usage = Usage(prompt_tokens=given, completion_tokens=output)
        if price is not None:
            details = reported.get("input_tokens_details") or {}
            image_in = min(token_count(_get(details, "image_tokens")) or 0, given)
            image_rate = units.image_input if units and units.image_input is not None else None
            cost = (
                (given - image_in) * price.input
                + image_in * (image_rate if image_rate is not None else price.input)
                + output * price.output
            ) / _MILLION
            return Metered(usage, "images", count, cost)
    else:
        usage = Usage(prompt_tokens=prompt_tokens(request), estimated=True)
    each = _image_price(request, units)
    if each is not None:
        return Metered(usage, "images", count, each * count)
    return Metered(usage, "images", count, cost_usd(usage, price) if price else _ZERO)


def _image_price(request: OperationRequest, units: UnitPrices | None) -> Decimal | None:
    if units is None:
        return None
    quality = request.param("quality") or "standard"
    return units.image_price(str(quality), str(request.param("size") or "1024x1024"))


def _transcription(
    request: OperationRequest,
    data: dict[str, Any],
    text: bytes | None,
    price: Price | None,
    units: UnitPrices | None,
) -> Metered:
    reported = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    seconds = _seconds(reported.get("seconds")) if reported.get("type") == "duration" else None
    seconds = seconds if seconds is not None else _seconds(data.get("duration"))
    exact = seconds is not None
    if seconds is None:
        seconds, exact = _upload_seconds(request)
        cue = last_cue_seconds(text) if text and not exact else None
        seconds = cue if cue is not None and cue > 0 else seconds
    usage = Usage(estimated=not exact)
    if reported.get("type") == "tokens":
        usage = Usage(
            prompt_tokens=token_count(reported.get("input_tokens")) or 0,
            completion_tokens=token_count(reported.get("output_tokens")) or 0,
            estimated=not exact,
        )
        if price is not None:
            return Metered(usage, "seconds", round(seconds, 2), cost_usd(usage, price))
    rate = units.per_minute if units else None
    cost = rate * Decimal(str(round(seconds, 2))) / 60 if rate is not None else _ZERO
    return Metered(usage, "seconds", round(seconds, 2), cost)


def _upload_seconds(request: OperationRequest) -> tuple[float, bool]:
    files = request.form.files("file") if request.form is not None else []
    if not files:
        return 0.0, False
    return estimated_seconds(files[0].data, files[0].filename)


def _rerank(
    request: OperationRequest, data: dict[str, Any], price: Price | None, units: UnitPrices | None
) -> Metered:
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    billed = meta.get("billed_units") if isinstance(meta.get("billed_units"), dict) else {}
    searches = token_count(billed.get("search_units"))
    estimated = searches is None
    if searches is None:
        searches = _searches(request)
    reported = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = token_count(reported.get("total_tokens") or reported.get("prompt_tokens"))
    counted = tokens if tokens is not None else prompt_tokens(request)
    if units is not None and units.per_thousand_searches is not None:  # billed per search
        usage = Usage(prompt_tokens=counted, estimated=estimated)
        return Metered(usage, "searches", searches, units.per_thousand_searches * searches / 1000)
    usage = Usage(prompt_tokens=counted, estimated=tokens is None)  # billed per token, if at all
    return Metered(usage, "searches", searches, cost_usd(usage, price) if price else _ZERO)


def _estimate(request: OperationRequest, price: Price | None, units: UnitPrices | None) -> Decimal:
    endpoint = request.endpoint
    if endpoint is Endpoint.IMAGES:
        each = _image_price(request, units)
        if each is None and units is not None:
            each = units.most_per_image()
        return each * _count(request.param("n")) if each is not None else _ZERO
    if endpoint is Endpoint.TRANSCRIPTIONS:
        rate = units.per_minute if units else None
        seconds = _upload_seconds(request)[0]
        return rate * Decimal(str(round(seconds, 2))) / 60 if rate is not None else _ZERO
    if endpoint is Endpoint.SPEECH:
        rate = units.per_million_characters if units else None
        characters = len(str(request.param("input") or ""))
        return rate * characters / _MILLION if rate is not None else _ZERO
    if endpoint is Endpoint.RERANK and units and units.per_thousand_searches is not None:
        return units.per_thousand_searches * _searches(request) / 1000
    if price is None:
        return _ZERO
    return price.estimate(prompt_tokens(request), output_tokens(request))


def _searches(request: OperationRequest) -> int:
    documents = request.param("documents")
    return max(1, math.ceil(len(documents) / SEARCH_DOCUMENTS)) if documents else 1


def _count(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # form fields are text
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 10**7:
        return float(value)
    return None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]  # one prompt as token ids
    return value if isinstance(value, list) else [value]


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None
