"""A chat.completion (the internal answer) -> an Anthropic Message.

Content comes in the order Anthropic gives it: thinking blocks, text, tool_use blocks. Only
thinking blocks Anthropic made (with their signature, or redacted) are given back: reasoning
text without a signature would be refused when the client sends it back, so it is left out.

Stop reasons: stop -> end_turn (stop_sequence when the provider reports which of the client's
sequences matched), length -> max_tokens, tool_calls -> tool_use, content_filter -> refusal;
whenever tools were called the reason is tool_use, as Anthropic's is. Unknown reasons are
end_turn: a failure never reaches this module, it is rendered by errors.py.

Usage: Anthropic's input_tokens exclude cache reads and cache writes, which it counts apart;
the internal prompt_tokens include both, so they are taken out again here.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import msgspec

from perpetuo.api.dialects.base import DialectRequest
from perpetuo.schema.usage import Usage

Json = dict[str, Any]
log = logging.getLogger("perpetuo.dialects")

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Where OpenAI-compatible servers say which stop string ended the answer (vLLM, SGLang).
_MATCHED_STOP_FIELDS = ("stop_reason", "matched_stop")


def encode(chat_body: Json, usage: Usage, *, model: str, request: DialectRequest) -> Json:
    choices = chat_body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content: list[Json] = list(thinking_blocks(message.get("thinking_blocks")))
    text = text_of(message.get("content"))
    refused = not text and isinstance(message.get("refusal"), str) and bool(message["refusal"])
    if refused:
        text = message["refusal"]
    if text:
        content.append({"type": "text", "text": text})
    calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
    for call in calls:
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        name = function.get("name") if isinstance(function.get("name"), str) else ""
        content.append(tool_use(call.get("id"), name, function.get("arguments")))
    reason, sequence = stop_of(choice, request, made_tool_calls=bool(calls), refused=refused)
    return {
        "id": message_id(chat_body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage_of(usage),
    }


def message_id(chat_id: Any) -> str:
    """The answer's id when it is already a Message id, else a fresh one in that form."""
    if isinstance(chat_id, str) and chat_id.startswith("msg_"):
        return chat_id
    return "msg_" + secrets.token_hex(12)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts, as some providers answer
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def thinking_blocks(blocks: Any) -> list[Json]:
    """The Anthropic-made blocks among the answer's thinking_blocks, in Anthropic's shape."""
    out: list[Json] = []
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "thinking" and isinstance(block.get("signature"), str) and block["signature"]:
            thought = block.get("thinking")
            thought = thought if isinstance(thought, str) else ""
            out.append({"type": "thinking", "thinking": thought, "signature": block["signature"]})
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            out.append({"type": "redacted_thinking", "data": block["data"]})
    return out


def tool_use(call_id: Any, name: str, arguments: Any) -> Json:
    if not isinstance(call_id, str) or not call_id:
        call_id = "toolu_" + secrets.token_hex(12)
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input(arguments, name)}


def tool_input(arguments: Any, name: str) -> Json:
    """A tool call's JSON arguments as the object Anthropic sends; {} when they are not one."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except (msgspec.DecodeError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        # The arguments themselves may hold anything the user said: never logged.
        log.warning("tool call to %r has arguments that are not a JSON object; sent as {}", name)
        return {}
    return value


def stop_of(
    choice: Json, request: DialectRequest, *, made_tool_calls: bool, refused: bool = False
) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for a chat choice's finish."""
    finish = choice.get("finish_reason")
    reason = stop_reason(finish, made_tool_calls=made_tool_calls, refused=refused)
    if reason == "end_turn" and finish == "stop":
        sequences = request.raw.get("stop_sequences")
        for field in _MATCHED_STOP_FIELDS:
            matched = choice.get(field)
            if isinstance(matched, str) and isinstance(sequences, list) and matched in sequences:
                return "stop_sequence", matched
    return reason, None


def stop_reason(finish: Any, *, made_tool_calls: bool, refused: bool = False) -> str:
    reason = STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    if made_tool_calls and reason == "end_turn":
        return "tool_use"  # some providers say "stop" after calling tools; Anthropic does not
    if reason == "tool_use" and not made_tool_calls:
        return "end_turn"
    if refused and reason == "end_turn":
        return "refusal"
    return reason


def usage_of(usage: Usage | None) -> Json:
    if usage is None:
        usage = Usage()
    fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(0, fresh),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }
