"""Anthropic Message and stream events -> OpenAI chat.completion and chunks.

Text blocks become `content`, tool_use blocks `tool_calls` (input re-encoded as a JSON
string), thinking blocks `reasoning_content` plus the blocks themselves, signed, in
`thinking_blocks` (the next turn must replay them to Anthropic). A tool_use of the gateway's
JSON tool is the answer to a response_format request, so it becomes `content` and the finish
reason "stop".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from perpetuo.providers.anthropic.errors import payload_error
from perpetuo.providers.anthropic.request import JSON_TOOL
from perpetuo.providers.base import Json, Target, checked_usage, decode_object, now
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import Usage, token_count

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server-tool loop paused; what was said so far is the answer
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any, made_tool_calls: bool) -> str:
    reason = FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if reason == "tool_calls" and not made_tool_calls:
        return "stop"  # only the JSON tool was used: that is a final answer
    return reason


def usage_of(usage: Any) -> Usage:
    """Anthropic counts cached prompt tokens apart from input_tokens; OpenAI includes them."""
    usage = usage if isinstance(usage, dict) else {}
    fresh, read, written, output = (
        _count(usage, name)
        for name in (
            "input_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "output_tokens",
        )
    )
    return Usage(
        prompt_tokens=fresh + read + written,
        completion_tokens=output,
        cached_tokens=read,
        cache_write_tokens=written,
    )


def _count(usage: Json, name: str) -> int:
    return token_count(usage.get(name)) or 0


def _encode(value: Any) -> str:
    return msgspec.json.encode(value).decode()


# --- complete responses --------------------------------------------------------------------


def translate_response(body: bytes, target: Target) -> Json:
    data = decode_object(body)
    if data.get("type") == "error":
        raise payload_error(data)
    content = data.get("content")
    if not isinstance(content, list):
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream message has no content")
    texts: list[str] = []
    thoughts: list[str] = []
    blocks: list[Json] = []  # thinking with signatures, verbatim: the next turn replays them
    calls: list[Json] = []
    json_answer: str | None = None
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "thinking":
            thoughts.append(str(block.get("thinking", "")))
            blocks.append(block)
        elif kind == "redacted_thinking":
            blocks.append(block)
        elif kind == "tool_use" and block.get("name") == JSON_TOOL:
            json_answer = _encode(block.get("input", {}))
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    message: Json = {
        "role": "assistant",
        "content": json_answer if json_answer is not None else ("".join(texts) or None),
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if blocks:
        message["thinking_blocks"] = blocks
    return {
        "id": data.get("id") or "msg_unknown",
        "object": "chat.completion",
        "created": now(),
        "model": data.get("model") or target.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("stop_reason"), bool(calls)),
            }
        ],
        "usage": usage_of(checked_usage(data.get("usage"), target)).to_openai(),
    }


def _tool_call(block: Json) -> Json:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": _encode(block.get("input", {}))},
    }


# --- streams -------------------------------------------------------------------------------


class StreamTranslator:
    """Turns the events of one Anthropic stream into OpenAI chunks, in order.

    Feed each event's decoded data to `feed`; `finished` says whether message_stop arrived.
    """

    def __init__(self, target: Target) -> None:
        self.id = "msg_unknown"
        self.target = target
        self.model = target.model
        self.created = now()
        self.usage: Json = {}
        self.finished = False
        self._json_blocks: set[int] = set()  # content indexes of JSON-tool blocks
        self._tool_index: dict[int, int] = {}  # content index -> OpenAI tool call index
        self._thinking: dict[int, list[str]] = {}  # content index -> thinking text so far

    def feed(self, event: Json) -> Iterator[Json]:
        handler = _HANDLERS.get(str(event.get("type")))
        return handler(self, event) if handler else iter(())

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _message_start(self, event: Json) -> Iterator[Json]:
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        self.id = message.get("id") or self.id
        self.model = message.get("model") or self.model
        self._add_usage(message.get("usage"))
        yield self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, event: Json) -> Iterator[Json]:
        index, block = event.get("index"), event.get("content_block") or {}
        kind = block.get("type")
        if kind == "tool_use" and block.get("name") == JSON_TOOL:
            self._json_blocks.add(index)
        elif kind == "tool_use":
            ordinal = self._tool_index[index] = len(self._tool_index)
            call = {
                "index": ordinal,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            yield self._chunk({"tool_calls": [call]})
        elif kind == "text" and block.get("text"):
            yield self._chunk({"content": block["text"]})
        elif kind == "thinking":
            self._thinking[index] = [str(block.get("thinking") or "")]
        elif kind == "redacted_thinking":
            yield self._chunk({"thinking_blocks": [block]})  # it arrives whole

    def _block_delta(self, event: Json) -> Iterator[Json]:
        index, delta = event.get("index"), event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            yield self._chunk({"content": delta.get("text", "")})
        elif kind == "thinking_delta":
            piece = delta.get("thinking", "")
            self._thinking.setdefault(index, []).append(str(piece))
            yield self._chunk({"reasoning_content": piece})
        elif kind == "signature_delta":
            # The block is complete with its signature: what the next turn must send back.
            text = "".join(self._thinking.pop(index, []))
            block = {"type": "thinking", "thinking": text, "signature": delta.get("signature", "")}
            yield self._chunk({"thinking_blocks": [block]})
        elif kind == "input_json_delta" and delta.get("partial_json"):
            piece = delta["partial_json"]
            if index in self._json_blocks:
                yield self._chunk({"content": piece})
            elif index in self._tool_index:
                call = {"index": self._tool_index[index], "function": {"arguments": piece}}
                yield self._chunk({"tool_calls": [call]})
        # citations_delta has no chat counterpart.

    def _message_delta(self, event: Json) -> Iterator[Json]:
        self._add_usage(event.get("usage"))
        delta = event.get("delta") or {}
        yield self._chunk({}, finish_reason(delta.get("stop_reason"), bool(self._tool_index)))

    def _message_stop(self, event: Json) -> Iterator[Json]:
        self.finished = True
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage_of(self.usage).to_openai()
        yield chunk

    def _error(self, event: Json) -> Iterator[Json]:
        raise payload_error(event)

    def _add_usage(self, usage: Any) -> None:
        # message_delta counts are cumulative, so later values replace earlier ones.
        if isinstance(usage, dict):
            checked_usage(usage, self.target)
            self.usage.update({k: v for k, v in usage.items() if v is not None})


_HANDLERS = {
    "message_start": StreamTranslator._message_start,
    "content_block_start": StreamTranslator._block_start,
    "content_block_delta": StreamTranslator._block_delta,
    "message_delta": StreamTranslator._message_delta,
    "message_stop": StreamTranslator._message_stop,
    "error": StreamTranslator._error,
    # ping and content_block_stop carry nothing a client needs.
}
