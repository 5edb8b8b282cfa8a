"""Token estimates for when a provider reports no usage.

The estimate is marked as such in Usage.estimated; provider-reported counts always win.
"""

from __future__ import annotations

from typing import Any

from perpetuo.schema.chat import ChatCompletionRequest, text_of
from perpetuo.schema.usage import Usage

_PER_MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI's chat format counts them


def estimate_text_tokens(text: str) -> int:
    """About four bytes of UTF-8 per token for English-like text; never zero for text."""
    if not text:
        return 0
    return max(1, (len(text.encode("utf-8")) + 3) // 4)


def estimate_prompt_tokens(request: ChatCompletionRequest) -> int:
    total = 3
    for message in request.messages:
        total += _PER_MESSAGE_OVERHEAD + estimate_text_tokens(
            text_of(getattr(message, "content", ""))
        )
    return total


def completion_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for choice in body.get("choices") or ():
        message = choice.get("message") or choice.get("delta") or {}
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.append(str(function.get("name") or "") + str(function.get("arguments") or ""))
    return "".join(parts)


def estimate_usage(request: ChatCompletionRequest, completion: str) -> Usage:
    return Usage(
        prompt_tokens=estimate_prompt_tokens(request),
        completion_tokens=estimate_text_tokens(completion),
        estimated=True,
    )


def estimate_input_tokens(inputs: list[Any]) -> int:
    """Embedding inputs: strings are estimated, token-id arrays counted."""
    return sum(
        estimate_text_tokens(i) if isinstance(i, str) else len(i) if isinstance(i, list) else 1
        for i in inputs
    )
