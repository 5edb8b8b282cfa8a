"""What OpenAI-compatible hosts put in their answers differently, made chat form in place.

Each fix is switched on by a preset field (presets.py), so an answer from a host that needs
none is not touched:
- reasoning under another name (`reasoning`: Groq, OpenRouter, vLLM, Ollama, Together)
  becomes `reasoning_content`, in messages and in stream deltas;
- content as a list of chunks (Mistral's Magistral: text and thinking) becomes the text,
  with the thinking as `reasoning_content`;
- a stream's usage found elsewhere (Groq's `x_groq.usage`) is lifted to `usage`;
- prompt-cache hits counted in a field of the host's own (DeepSeek's
  `prompt_cache_hit_tokens`) become `prompt_tokens_details.cached_tokens`;
- reasoning tokens left out of completion_tokens (xAI) are added back, as OpenAI counts them;
- the host's charge (OpenRouter's `cost`, xAI's `cost_in_usd_ticks`) becomes `usage.cost`
  in USD, which metering uses instead of the catalog price (operator deployments only).
"""

from __future__ import annotations

from typing import Any

from perpetuo.providers.base import Json
from perpetuo.providers.presets import OpenAIQuirks
from perpetuo.schema.usage import token_count


def fix_completion(data: Json, quirks: OpenAIQuirks) -> None:
    choices = data.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            _fix_message(message, quirks, is_delta=False)
    usage = data.get("usage")
    if isinstance(usage, dict):
        fix_usage(usage, quirks)


def fix_chunk(chunk: Json, quirks: OpenAIQuirks) -> None:
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            _fix_message(delta, quirks, is_delta=True)
    if quirks.stream_usage_path and not chunk.get("usage"):
        lifted = _at(chunk, quirks.stream_usage_path)
        if isinstance(lifted, dict):
            chunk["usage"] = lifted
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        fix_usage(usage, quirks)


def fix_usage(usage: Json, quirks: OpenAIQuirks) -> None:
    if name := quirks.cached_tokens_field:
        hits = token_count(usage.get(name))
        details = usage.get("prompt_tokens_details")
        if not isinstance(details, dict):
            details = usage["prompt_tokens_details"] = {}
        if hits and not token_count(details.get("cached_tokens")):
            details["cached_tokens"] = hits
    if quirks.reasoning_outside_completion:
        details = usage.get("completion_tokens_details")
        reasoning = token_count(details.get("reasoning_tokens")) if isinstance(details, dict) else 0
        completion = token_count(usage.get("completion_tokens"))
        if reasoning and completion is not None:
            usage["completion_tokens"] = completion + reasoning
            prompt = token_count(usage.get("prompt_tokens")) or 0
            usage["total_tokens"] = prompt + completion + reasoning
    if quirks.cost_field is not None:
        name, usd_per_unit = quirks.cost_field
        charged = usage.get(name) if name == "cost" else usage.pop(name, None)
        if type(charged) in (int, float):
            usage["cost"] = charged * usd_per_unit


def _fix_message(message: Json, quirks: OpenAIQuirks, *, is_delta: bool) -> None:
    if quirks.content_parts and isinstance(message.get("content"), list):
        text, thinking = split_parts(message["content"])
        message["content"] = text if text or is_delta else None
        if thinking:
            message["reasoning_content"] = (message.get("reasoning_content") or "") + thinking
    if (name := quirks.reasoning_field) and name in message:
        value = message.pop(name)
        if isinstance(value, str) and value and not message.get("reasoning_content"):
            message["reasoning_content"] = value


def split_parts(parts: list[Any]) -> tuple[str, str]:
    """(text, thinking) of a content list: `{"type": "text", "text"}` chunks, and
    `{"type": "thinking", "thinking": [text chunks] | str}` chunks (Mistral's shape)."""
    texts: list[str] = []
    thoughts: list[str] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif not isinstance(part, dict):
            continue
        elif part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "thinking":
            inner = part.get("thinking")
            if isinstance(inner, str):
                thoughts.append(inner)
            elif isinstance(inner, list):
                thoughts.append(split_parts(inner)[0])
    return "".join(texts), "".join(thoughts)


def _at(data: Json, path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
