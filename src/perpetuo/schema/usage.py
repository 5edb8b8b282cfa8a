"""Token usage in one normalized form, whatever the provider called its fields."""

from __future__ import annotations

from typing import Any

from msgspec import Struct


class Usage(Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # prompt tokens written to the provider's prompt cache
    reasoning_tokens: int = 0  # part of completion_tokens spent on hidden reasoning
    estimated: bool = False  # counted locally because the provider reported none

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
        prompt = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        if prompt is None and completion is None:
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            prompt_tokens=prompt or 0,
            completion_tokens=completion or 0,
            cached_tokens=_int(_get(prompt_details, "cached_tokens")) or 0,
            cache_write_tokens=_int(_get(prompt_details, "cache_write_tokens")) or 0,
            reasoning_tokens=_int(_get(completion_details, "reasoning_tokens")) or 0,
        )


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
