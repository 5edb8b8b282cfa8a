"""Reading an earlier assistant turn of a chat request, for the adapters that rebuild it in
their provider's own shape (Anthropic, Bedrock Converse, Cohere): its text, its function
calls (refusing what no such provider can carry), their arguments as an object, and the
signed thinking that must be replayed verbatim."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from perpetuo.providers.base import Json, unsupported
from perpetuo.schema.chat import AssistantMessage, FunctionToolCall, TextPart, is_set
from perpetuo.schema.reasoning import FOREIGN_KINDS, unseal


def assistant_text(message: AssistantMessage) -> str:
    """The turn's text; refusal parts count as text (the provider saw them as such)."""
    content = message.content
    if isinstance(content, list):
        return "".join(p.text if isinstance(p, TextPart) else p.refusal for p in content)
    return content if isinstance(content, str) else ""


def function_calls(message: AssistantMessage, index: int) -> Iterator[tuple[FunctionToolCall, str]]:
    """Each function call with the parameter path that names it in errors."""
    if is_set(message.function_call):
        raise unsupported("legacy `function_call` messages are not supported", "messages")
    for j, call in enumerate(message.tool_calls or ()):
        where = f"messages[{index}].tool_calls[{j}]"
        if not isinstance(call, FunctionToolCall):
            raise unsupported(f"`{where}`: custom tool calls are not supported", where)
        yield call, where


def arguments_object(arguments: str, where: str, provider: str) -> Json:
    """Tool input as the object these providers take, where OpenAI carries a JSON string."""
    if not arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except (msgspec.DecodeError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise unsupported(f"`{where}` must be a JSON object to send it to {provider}", where)
    return value


def signed_thinking(given: Any) -> list[Json]:
    """Earlier turns' thinking in Anthropic's kinds (also when another dialect carried it
    sealed), in order; reasoning other providers made means nothing to these and is left out."""
    blocks: list[Json] = []
    for block in given if isinstance(given, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") in FOREIGN_KINDS:
            blocks.append(block)
        elif (sealed := unseal(block.get("encrypted_content"))) is not None:
            blocks.append(sealed)
    return blocks
