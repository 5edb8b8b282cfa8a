"""Token usage in one normalized form, whatever the provider called its fields.

Counts come from upstreams and are untrusted: every reader goes through `token_count` (and
whole usage objects through `clamp_counts`), so a negative or absurd figure never reaches
limits, metrics, prices or the request log.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

MAX_TOKENS = 100_000_000  # far past any context window: a larger count is not believed
MAX_COST_USD = 1000.0  # no single answer costs more: a larger charge is not believed


class Usage(Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # prompt tokens written to the provider's prompt cache
    reasoning_tokens: int = 0  # part of completion_tokens spent on hidden reasoning
    estimated: bool = False  # counted locally because the provider reported none
    # What the provider says it charged, in USD (OpenRouter's and xAI's usage report it);
    # metering uses it for deployments whose adapter reports costs (see recorder.py).
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_openai(self) -> dict[str, Any]:
        prompt_details: dict[str, int] = {"cached_tokens": self.cached_tokens, "audio_tokens": 0}
        if self.cache_write_tokens:
            # Not an OpenAI field: Anthropic-style cache writes, priced apart (SDKs ignore it).
            prompt_details["cache_write_tokens"] = self.cache_write_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Read an OpenAI-format usage object; None when absent or malformed."""
        if not isinstance(usage, dict):
            return None
        prompt = token_count(usage.get("prompt_tokens"))
        completion = token_count(usage.get("completion_tokens"))
        if prompt is None and completion is None:
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            prompt_tokens=prompt or 0,
            completion_tokens=completion or 0,
            cached_tokens=token_count(_get(prompt_details, "cached_tokens")) or 0,
            cache_write_tokens=token_count(_get(prompt_details, "cache_write_tokens")) or 0,
            reasoning_tokens=token_count(_get(completion_details, "reasoning_tokens")) or 0,
            cost_usd=_cost(usage.get("cost")),
        )


def _cost(value: Any) -> float | None:
    kind = type(value)
    if (kind is int or kind is float) and 0 <= value <= MAX_COST_USD:  # NaN fails this too
        return float(value)
    return None


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def token_count(value: Any) -> int | None:
    """A token count as reported upstream, made safe to add and bill: None unless it is an
    integer, 0 for a negative one, MAX_TOKENS at most."""
    if type(value) is not int:  # bool is an int subclass and is not a count
        return None
    return 0 if value < 0 else value if value <= MAX_TOKENS else MAX_TOKENS


def clamp_counts(usage: dict[str, Any]) -> str | None:
    """Clamp in place every number of an upstream usage object and of the objects in it
    (details): below 0 to 0, past MAX_TOKENS to it. The name of the first number that was
    out of range, or None. OpenAI's total_tokens is made the sum again after a clamp."""
    bad = None
    for name, value in usage.items():
        kind = type(value)
        if kind is int or kind is float:
            if not 0 <= value <= MAX_TOKENS:  # NaN fails this too
                usage[name] = kind(MAX_TOKENS if value > MAX_TOKENS else 0)
                bad = bad or name
        elif kind is dict:
            for inner, number in value.items():
                kind = type(number)
                if (kind is int or kind is float) and not 0 <= number <= MAX_TOKENS:
                    value[inner] = kind(MAX_TOKENS if number > MAX_TOKENS else 0)
                    bad = bad or f"{name}.{inner}"
    if bad is not None and "total_tokens" in usage:
        prompt = token_count(usage.get("prompt_tokens")) or 0
        usage["total_tokens"] = prompt + (token_count(usage.get("completion_tokens")) or 0)
    return bad
