"""The request-side quirks of OpenAI-compatible hosts that a parameter list cannot say:
which parameters one model family refuses or ignores, the reasoning_effort values it takes,
earlier turns' reasoning, and tool-call ids of a fixed form (Mistral)."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from typing import Any

import msgspec

from perpetuo.providers.base import unsupported
from perpetuo.providers.presets import OpenAIQuirks, nearest_effort
from perpetuo.schema.chat import AssistantMessage, ChatCompletionRequest, ToolMessage

_replace = msgspec.structs.replace
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def parameter_changes(
    request: ChatCompletionRequest, quirks: OpenAIQuirks, model: str, host: str
) -> dict[str, Any]:
    """Fields to unset or rewrite for this host and model; raises `unsupported` for a
    parameter they refuse (another deployment may serve the request)."""
    rule = quirks.rule_for(model) if quirks.model_rules else None
    refused = quirks.unsupported + rule.unsupported if rule else quirks.unsupported
    for name in refused:
        value = getattr(request, name, None)
        if value is not None and value is not msgspec.UNSET and value is not False:
            if name == "n" and value == 1:
                continue
            raise unsupported(f"`{name}` is not supported by {host} deployments of {model}", name)
    dropped = quirks.dropped + rule.dropped if rule else quirks.dropped
    changes: dict[str, Any] = dict.fromkeys(dropped, msgspec.UNSET)
    effort = request.reasoning_effort
    if rule is not None and rule.reasoning_efforts is not None and isinstance(effort, str):
        value = nearest_effort(effort, rule.reasoning_efforts)
        changes["reasoning_effort"] = msgspec.UNSET if value is None else value
    return changes


def carries_reasoning(message: Any) -> bool:
    unset = msgspec.UNSET
    return isinstance(message, AssistantMessage) and (
        message.thinking_blocks is not unset or message.reasoning_content is not unset
    )


def without_reasoning(message: Any, keep_text: bool) -> Any:
    """Chat Completions takes no reasoning back, except on hosts that want its text again
    (`keep_text`); blocks with proofs belong to other APIs and always stay here."""
    if not carries_reasoning(message):
        return message
    if keep_text:
        return _replace(message, thinking_blocks=msgspec.UNSET)
    return _replace(message, thinking_blocks=msgspec.UNSET, reasoning_content=msgspec.UNSET)


def with_tool_ids(messages: list[Any], length: int) -> list[Any]:
    """The messages with every tool-call id not already `length` letters and digits
    replaced by one that is, derived from it, so calls and their results still match."""
    shape = _id_shape(length)
    out = []
    for message in messages:
        if isinstance(message, ToolMessage) and not shape.fullmatch(message.tool_call_id):
            message = _replace(message, tool_call_id=short_id(message.tool_call_id, length))
        elif isinstance(message, AssistantMessage) and message.tool_calls:
            calls = [
                call if shape.fullmatch(call.id) else _replace(call, id=short_id(call.id, length))
                for call in message.tool_calls
            ]
            message = _replace(message, tool_calls=calls)
        out.append(message)
    return out


@cache
def _id_shape(length: int) -> re.Pattern[str]:
    return re.compile(rf"[A-Za-z0-9]{{{length}}}")


def short_id(value: str, length: int) -> str:
    digest = int.from_bytes(hashlib.sha256(value.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        digest, index = divmod(digest, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[index])
    return "".join(chars)
