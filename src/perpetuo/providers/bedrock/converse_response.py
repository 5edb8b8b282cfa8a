"""Bedrock Converse answers and ConverseStream events -> OpenAI chat.completion and chunks.

- Text blocks become `content`, `toolUse` blocks `tool_calls` (input as a JSON string); a
  call of the gateway's JSON tool is the answer to a response_format request: `content`,
  finish "stop". `reasoningContent` becomes `reasoning_content`, and signed reasoning (Claude's)
  also `thinking_blocks` in Anthropic's shape, which the next turn replays; redacted
  reasoning comes back as `redacted_thinking`.
- stopReason: end_turn, stop_sequence -> stop; max_tokens, model_context_window_exceeded ->
  length; tool_use -> tool_calls; guardrail_intervened, content_filtered -> content_filter.
  malformed_model_output and malformed_tool_use are failures (BAD_RESPONSE: another
  deployment may do better), never a normal end; unknown reasons end as "stop".
- Usage: `inputTokens` counts the prompt tokens that were neither read from nor written to
  the prompt cache (as Anthropic's input_tokens do), so prompt_tokens = inputTokens +
  cacheReadInputTokens + cacheWriteInputTokens. Should `totalTokens` show the cached ones
  already inside inputTokens (total = input + output), they are not added twice.
- A stream is messageStart, content deltas by block index (a `contentBlockStart` only for
  tool calls), messageStop with the reason, then `metadata` with usage. A stream that ends
  before messageStop failed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from perpetuo.providers.anthropic.request import JSON_TOOL
from perpetuo.providers.base import Json, Target, checked_usage, decode_object, now
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import Usage, token_count
from perpetuo.transport.sse import SSEEvent

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
FAILED_STOPS = frozenset({"malformed_model_output", "malformed_tool_use"})


def finish_reason(stop_reason: Any, made_tool_calls: bool) -> str:
    if stop_reason in FAILED_STOPS:
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, f"the model's output was unusable ({stop_reason})"
        )
    reason = FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if reason == "tool_calls" and not made_tool_calls:
        return "stop"  # only the JSON tool was called: that is the final answer
    return reason


def usage_of(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    fresh = token_count(usage.get("inputTokens"))
    output = token_count(usage.get("outputTokens"))
    if fresh is None and output is None:
        return None
    fresh, output = fresh or 0, output or 0
    read = token_count(usage.get("cacheReadInputTokens")) or 0
    written = token_count(usage.get("cacheWriteInputTokens")) or 0
    total = token_count(usage.get("totalTokens"))
    inclusive = (read or written) and total == fresh + output and fresh >= read + written
    prompt = fresh if inclusive else fresh + read + written
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output,
        cached_tokens=read,
        cache_write_tokens=written,
    )


def _encode(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _redacted(data: Any) -> Json:
    """Redacted reasoning, as the blob Converse sends (base64 in JSON)."""
    return {"type": "redacted_thinking", "data": data if isinstance(data, str) else ""}


# --- complete answers ----------------------------------------------------------------------


def completion(body: bytes, target: Target) -> Json:
    data = decode_object(body)
    output = data.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream answer has no message")
    texts: list[str] = []
    thoughts: list[str] = []
    blocks: list[Json] = []
    calls: list[Json] = []
    json_answer: str | None = None
    for block in content:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(tool := block.get("toolUse"), dict):
            if tool.get("name") == JSON_TOOL:
                json_answer = _encode(tool.get("input", {}))
            else:
                calls.append(_tool_call(tool))
        elif isinstance(reasoning := block.get("reasoningContent"), dict):
            text = reasoning.get("reasoningText")
            if isinstance(text, dict):
                thoughts.append(str(text.get("text", "")))
                if text.get("signature"):
                    blocks.append(
                        {
                            "type": "thinking",
                            "thinking": str(text.get("text", "")),
                            "signature": text["signature"],
                        }
                    )
            elif "redactedContent" in reasoning:
                blocks.append(_redacted(reasoning["redactedContent"]))
    answer: Json = {
        "role": "assistant",
        "content": json_answer if json_answer is not None else ("".join(texts) or None),
        "refusal": None,
    }
    if calls:
        answer["tool_calls"] = calls
    if thoughts:
        answer["reasoning_content"] = "".join(thoughts)
    if blocks:
        answer["thinking_blocks"] = blocks
    result: Json = {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": now(),
        "model": target.model,
        "choices": [
            {
                "index": 0,
                "message": answer,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("stopReason"), bool(calls)),
            }
        ],
    }
    usage = usage_of(checked_usage(data.get("usage"), target))
    if usage is not None:
        result["usage"] = usage.to_openai()
    return result


def _tool_call(tool: Json) -> Json:
    return {
        "id": tool.get("toolUseId"),
        "type": "function",
        "function": {"name": tool.get("name"), "arguments": _encode(tool.get("input", {}))},
    }


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"  # Converse answers carry no id


# --- streams -------------------------------------------------------------------------------


class StreamTranslator:
    """ConverseStream events (their type and decoded payload) -> OpenAI chunks, in order."""

    def __init__(self, target: Target) -> None:
        self.id = _completion_id()
        self.target = target
        self.created = now()
        self.stopped = False  # messageStop arrived
        self.finished = False  # metadata arrived: nothing follows
        self._json_blocks: set[int] = set()
        self._tool_index: dict[int, int] = {}  # content block index -> OpenAI call index
        self._thinking: dict[int, list[str]] = {}

    def feed(self, kind: str, data: Json) -> list[Json]:
        if kind == "contentBlockDelta":  # nearly every event: its text goes first
            delta = data.get("delta")
            text = delta.get("text") if type(delta) is dict else None
            if text is not None:
                return [self._chunk({"content": text})] if text else []
        handler = _HANDLERS.get(kind)
        return handler(self, data) if handler else []

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.target.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _message_start(self, data: Json) -> list[Json]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: Json) -> list[Json]:
        index = data.get("contentBlockIndex")
        tool = (data.get("start") or {}).get("toolUse")
        if not isinstance(tool, dict) or not isinstance(index, int):
            return []
        if tool.get("name") == JSON_TOOL:
            self._json_blocks.add(index)
            return []
        ordinal = self._tool_index[index] = len(self._tool_index)
        call = {
            "index": ordinal,
            "id": tool.get("toolUseId"),
            "type": "function",
            "function": {"name": tool.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, data: Json) -> list[Json]:
        index = data.get("contentBlockIndex")
        delta = data.get("delta") if isinstance(data.get("delta"), dict) else {}
        if isinstance(tool := delta.get("toolUse"), dict):
            piece = tool.get("input")
            if not isinstance(piece, str) or not piece:
                return []
            if index in self._json_blocks:
                return [self._chunk({"content": piece})]
            if index in self._tool_index:
                call = {"index": self._tool_index[index], "function": {"arguments": piece}}
                return [self._chunk({"tool_calls": [call]})]
        elif isinstance(reasoning := delta.get("reasoningContent"), dict):
            return self._reasoning(index, reasoning)
        return []  # citation deltas have no chat counterpart

    def _reasoning(self, index: Any, reasoning: Json) -> list[Json]:
        if isinstance(reasoning.get("text"), str):
            self._thinking.setdefault(index, []).append(reasoning["text"])
            return [self._chunk({"reasoning_content": reasoning["text"]})]
        if isinstance(reasoning.get("signature"), str):
            text = "".join(self._thinking.pop(index, []))
            block = {"type": "thinking", "thinking": text, "signature": reasoning["signature"]}
            return [self._chunk({"thinking_blocks": [block]})]
        if "redactedContent" in reasoning:
            return [self._chunk({"thinking_blocks": [_redacted(reasoning["redactedContent"])]})]
        return []

    def _message_stop(self, data: Json) -> list[Json]:
        self.stopped = True
        return [self._chunk({}, finish_reason(data.get("stopReason"), bool(self._tool_index)))]

    def _metadata(self, data: Json) -> list[Json]:
        self.finished = True
        usage = usage_of(checked_usage(data.get("usage"), self.target))
        if usage is None:
            return []
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage.to_openai()
        return [chunk]


_HANDLERS = {
    "messageStart": StreamTranslator._message_start,
    "contentBlockStart": StreamTranslator._block_start,
    "contentBlockDelta": StreamTranslator._block_delta,
    "messageStop": StreamTranslator._message_stop,
    "metadata": StreamTranslator._metadata,
    # contentBlockStop carries nothing a client needs.
}


async def stream_chunks(events: AsyncIterator[SSEEvent], target: Target) -> AsyncIterator[Json]:
    translator = StreamTranslator(target)
    async for event in events:
        if not event.data:
            continue
        for chunk in translator.feed(event.event, decode_object(event.data, "stream event")):
            yield chunk
        if translator.finished:
            return
    if not translator.stopped:
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, "upstream stream ended before messageStop"
        )
