"""The pricing catalog and the one place a cost in USD is computed from token usage.

Prices are USD per million tokens, from `prices.json` (shipped with the package), looked up
by upstream model name: first exactly, then normalized (see `normalize_model`). An entry
keyed `provider_type:model` ("together:deepseek-ai/deepseek-r1") is that host's own figure,
found first for deployments of that provider type: hosts price one open model differently. A
deployment's `price:` config overrides the catalog field by field. Models billed in other
units (images, minutes of audio, characters, searches) carry those prices too (UnitPrices),
and each entry may say what the model is for (`mode`, schema/endpoints.py), the most tokens it
answers with (`max_output`) and its context window (`context_window`, prompt and answer).

To update: edit prices.json (one entry per model, in the vendor's published units) and its
`as_of`, as docs/providers.md describes; `tests/metering` checks that every entry loads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from perpetuo.config.model import PriceConfig
from perpetuo.schema.endpoints import MODES
from perpetuo.schema.usage import Usage

TOKEN_FIELDS = ("input", "output", "cached_input", "cache_write")
UNIT_FIELDS = (
    "per_image",
    "image_input",
    "per_minute",
    "per_million_characters",
    "per_thousand_searches",
)

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)

# One version suffix at a time, stripped until the name stops changing.
_SUFFIXES = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # gpt-4o-2024-08-06
    re.compile(r"[-@]\d{8}$"),  # claude-3-5-haiku-20241022, vertex claude@20241022
    re.compile(r"-latest$"),  # claude-3-5-sonnet-latest
    re.compile(r"-\d{3}$"),  # gemini-2.0-flash-001
    re.compile(r"-preview(-\d{2}-\d{2})?$"),  # gemini-2.5-flash-preview-05-20
)


# Bedrock ids: an optional cross-region inference-profile prefix ("us.", "eu.", "apac.",
# "global."...), the vendor ("anthropic."), the model, then a version ("-v2:0", "-v1:0:200k").
_BEDROCK_ID = re.compile(
    r"^(?:(?:us|eu|apac|ap|jp|au|ca|us-gov|global)\.)?"
    r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|writer|qwen|openai)\."
    r"(?P<model>.+?)(?:-v\d+(?::\d+)?(?::[0-9a-z]+)?)?$"
)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal

    @classmethod
    def of(
        cls,
        input: float | Decimal | str,
        output: float | Decimal | str = 0,
        cached_input: float | Decimal | str | None = None,
        cache_write: float | Decimal | str | None = None,
    ) -> Price:
        """A price from numbers; cached reads and cache writes default to the input price."""
        base = _dec(input)
        return cls(
            input=base,
            output=_dec(output),
            cached_input=base if cached_input is None else _dec(cached_input),
            cache_write=base if cache_write is None else _dec(cache_write),
        )

    def estimate(self, prompt_tokens: int, output_tokens: int) -> Decimal:
        """USD for a request of this size with no prompt caching (for routing by price)."""
        return (prompt_tokens * self.input + output_tokens * self.output) / _MILLION


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """Prices in units other than tokens, as the vendors publish them (USD)."""

    per_image: dict[str, Decimal] | None = None  # "" (any), or by "quality/size", "size", "quality"
    image_input: Decimal | None = None  # per million image input tokens (gpt-image)
    per_minute: Decimal | None = None  # of audio transcribed
    per_million_characters: Decimal | None = None  # of text spoken
    per_thousand_searches: Decimal | None = None  # rerank: a query over up to 100 documents

    @classmethod
    def of(cls, fields: dict[str, Any]) -> UnitPrices | None:
        if not any(fields.get(name) is not None for name in UNIT_FIELDS):
            return None
        per_image = fields.get("per_image")
        if per_image is not None and not isinstance(per_image, dict):
            per_image = {"": per_image}
        return cls(
            per_image={k: _dec(v) for k, v in per_image.items()} if per_image else None,
            **{
                name: _dec(fields[name]) for name in UNIT_FIELDS[1:] if fields.get(name) is not None
            },
        )

    def image_price(self, quality: str | None, size: str | None) -> Decimal | None:
        """One image of this quality and size: the most specific entry that matches; the
        dearest entry when none does (an estimate never undercharges)."""
        table = self.per_image
        if not table:
            return None
        for key in (f"{quality}/{size}", size, quality, ""):
            if key is not None and key in table:
                return table[key]
        return max(table.values())

    def most_per_image(self) -> Decimal | None:
        return max(self.per_image.values()) if self.per_image else None


def cost_usd(usage: Usage, price: Price) -> Decimal:
    """Exact USD cost of `usage`. Cached reads and cache writes are parts of prompt_tokens
    (as Usage defines them) and are priced at their own rates; reasoning tokens are part of
    completion_tokens and priced as output."""
    prompt = max(usage.prompt_tokens, 0)
    cached = min(max(usage.cached_tokens, 0), prompt)
    written = min(max(usage.cache_write_tokens, 0), prompt - cached)
    fresh = prompt - cached - written
    total = (
        fresh * price.input
        + cached * price.cached_input
        + written * price.cache_write
        + max(usage.completion_tokens, 0) * price.output
    )
    return total / _MILLION


def to_micro_usd(amount: Decimal) -> int:
    """Whole millionths of a dollar, rounded half up: for integer ledgers and counters."""
    return int((amount * _MILLION).to_integral_value(rounding=ROUND_HALF_UP))


def normalize_model(name: str) -> str:
    """Lower case, without a provider/path prefix ("openai/", "models/", a Bedrock ARN's
    resource path), without Bedrock's inference-profile, vendor and version parts
    ("us.anthropic.claude-sonnet-4-20250514-v1:0" -> "claude-sonnet-4") and without date or
    revision suffixes ("-2024-08-06", "-20241022", "@20241022", "-latest", "-001",
    "-preview[-MM-DD]")."""
    name = name.strip().lower().rsplit("/", 1)[-1]
    if bedrock := _BEDROCK_ID.match(name):
        name = bedrock.group("model")
    changed = True
    while changed:
        changed = False
        for pattern in _SUFFIXES:
            stripped = pattern.sub("", name)
            if stripped != name and stripped:
                name, changed = stripped, True
    return name


class PricingCatalog:
    def __init__(
        self,
        prices: dict[str, Price],
        max_output: dict[str, int] | None = None,
        units: dict[str, UnitPrices] | None = None,
        modes: dict[str, str] | None = None,
        context_windows: dict[str, int] | None = None,
    ) -> None:
        self.prices = prices
        self.max_output = max_output or {}  # model -> most tokens it generates in one answer
        self.context_windows = context_windows or {}  # model -> tokens in and out, together
        self.units = units or {}  # model -> prices in other units than tokens
        self.modes = modes or {}  # model -> what it is for (schema/endpoints.py MODES)
        self._resolved: dict[tuple[str | None, str], Price | None] = {}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PricingCatalog:
        models = data.get("models")
        if not isinstance(models, dict):
            raise ValueError("pricing catalog: `models` must be an object")
        prices, max_output, units, modes, windows = {}, {}, {}, {}, {}
        for name, fields in models.items():
            key = name.lower()
            if not isinstance(fields, dict):
                raise ValueError(f"pricing catalog: {name!r} must be an object")
            fields = dict(fields)
            limit = fields.pop("max_output", None)
            if limit is not None:
                if not isinstance(limit, int) or limit < 1:
                    raise ValueError(f"pricing catalog: {name!r} max_output must be >= 1")
                max_output[key] = limit
            window = fields.pop("context_window", None)
            if window is not None:
                if not isinstance(window, int) or window < 1:
                    raise ValueError(f"pricing catalog: {name!r} context_window must be >= 1")
                windows[key] = window
            mode = fields.pop("mode", "chat")
            if mode not in MODES:
                raise ValueError(f"pricing catalog: {name!r} mode {mode!r} is unknown")
            modes[key] = mode
            unit_prices = UnitPrices.of({n: fields.pop(n, None) for n in UNIT_FIELDS})
            if unit_prices is not None:
                units[key] = unit_prices
            if "input" in fields:
                prices[key] = Price.of(**fields)
            elif unit_prices is None:
                raise ValueError(
                    f"pricing catalog: {name!r} needs at least an input price or a unit price"
                )
        return cls(prices, max_output, units, modes, windows)

    @classmethod
    def load(cls, path: Path | None = None) -> PricingCatalog:
        if path is None:
            text = resources.files("perpetuo.metering").joinpath("prices.json").read_text()
        else:
            text = path.read_text(encoding="utf-8")
        return cls.from_json(json.loads(text))

    def mode_for(self, model: str, provider: str | None = None) -> str | None:
        """What the model is for, when the catalog knows the model."""
        return _find(self.modes, model, provider)

    def units_for(
        self, model: str, override: PriceConfig | None = None, provider: str | None = None
    ) -> UnitPrices | None:
        """The catalog's unit prices with the deployment's `price:` unit fields over them."""
        base = _find(self.units, model, provider)
        given = override.model_dump(include=set(UNIT_FIELDS), exclude_none=True) if override else {}
        if not given:
            return base
        merged: dict[str, Any] = {}
        if base is not None:
            merged = {name: getattr(base, name) for name in UNIT_FIELDS}
            if base.per_image is not None and "" in base.per_image and len(base.per_image) == 1:
                merged["per_image"] = base.per_image[""]
        merged.update(given)
        return UnitPrices.of(merged)

    def max_output_for(self, model: str, provider: str | None = None) -> int | None:
        """The most output tokens the model generates per answer, when the catalog knows."""
        return _find(self.max_output, model, provider)

    def context_window_for(self, model: str, provider: str | None = None) -> int | None:
        """The model's context window (prompt and answer together), when the catalog knows."""
        return _find(self.context_windows, model, provider)

    def lookup(self, model: str, provider: str | None = None) -> Price | None:
        """The catalog price of an upstream model: the provider type's own entry first;
        exact name first, then normalized."""
        key = (provider, model)
        if key in self._resolved:
            return self._resolved[key]
        price = _find(self.prices, model, provider)
        self._resolved[key] = price
        return price

    def price_for(
        self, model: str, override: PriceConfig | None = None, provider: str | None = None
    ) -> Price | None:
        """The catalog price with the deployment's `price:` fields laid over it. Without a
        catalog entry, an override needs at least `input`; `output` then defaults to 0."""
        base = self.lookup(model, provider)
        if override is None:
            return base
        given = override.model_dump(include=set(TOKEN_FIELDS), exclude_none=True)
        if not given:
            return base
        if base is None:
            return Price.of(**given) if "input" in given else None
        merged = {
            "input": base.input,
            "output": base.output,
            "cached_input": base.cached_input,
            "cache_write": base.cache_write,
        }
        if "input" in given and "cached_input" not in given and base.cached_input == base.input:
            merged["cached_input"] = given["input"]  # no separate rate: follow the new input
        if "input" in given and "cache_write" not in given and base.cache_write == base.input:
            merged["cache_write"] = given["input"]
        merged.update(given)
        return Price.of(**merged)


def _find(table: dict[str, Any], model: str, provider: str | None) -> Any:
    """The `provider:model` entry (a host's own figure) first, then the model's."""
    name, normalized = model.lower(), normalize_model(model)
    if provider:
        found = table.get(f"{provider}:{name}") or table.get(f"{provider}:{normalized}")
        if found is not None:
            return found
    return table.get(name) or table.get(normalized)


@cache
def default_catalog() -> PricingCatalog:
    """The catalog shipped with Perpetuo, loaded once."""
    return PricingCatalog.load()


def _dec(value: float | Decimal | str) -> Decimal:
    # Through str so that 0.15 is exactly 0.15, not its binary approximation.
    return value if isinstance(value, Decimal) else Decimal(str(value))
