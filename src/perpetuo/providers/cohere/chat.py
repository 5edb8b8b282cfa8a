"""Cohere v2 chat answers and stream events -> OpenAI chat.completion and chunks.

- Text content becomes `content`; thinking content and the `tool_plan` (the model's plan
  before it calls tools) become `reasoning_content`; tool calls keep their ids and JSON
  arguments.
- Citations of the answer's text (with `documents` or tool results) become the message's
  `annotations`, one `url_citation` per cited source: its character span in `content`, the
  source's `url` and `title` fields when it has them (else an empty url and its id). In
  streams they come as `delta.annotations` when Cohere sends them.
- finish_reason: COMPLETE and STOP_SEQUENCE -> stop, MAX_TOKENS -> length, TOOL_CALL ->
  tool_calls; ERROR and TIMEOUT fail the attempt, never a normal end.
- Usage: Cohere bills `billed_units` (which leave out the prompt template it adds), so those
  are the prompt and completion tokens, with `tokens` (everything the model read and wrote)
  when billed units are missing; `cached_tokens` are cache hits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from perpetuo.providers.base import Json, Target, checked_usage, decode_object, now
from perpetuo.providers.cohere.errors import stream_error
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import Usage, token_count

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
FAILURES = frozenset({"ERROR", "TIMEOUT"})


def finish_reason(reason: Any, made_tool_calls: bool) -> str:
    if reason in FAILURES:
        raise stream_error(reason, None)
    if made_tool_calls:
        return "tool_calls"
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def usage_of(usage: Any) -> Usage:
    usage = usage if isinstance(usage, dict) else {}
    billed = usage.get("billed_units") if isinstance(usage.get("billed_units"), dict) else {}
    tokens = usage.get("tokens") if isinstance(usage.get("tokens"), dict) else {}
    prompt = _count(billed.get("input_tokens"))
    if prompt is None:
        prompt = _count(tokens.get("input_tokens"))
    completion = _count(billed.get("output_tokens"))
    if completion is None:
        completion = _count(tokens.get("output_tokens"))
    cached = _count(usage.get("cached_tokens")) or 0
    return Usage(
        prompt_tokens=prompt or 0,
        completion_tokens=completion or 0,
        cached_tokens=min(cached, prompt or 0),
    )


def _count(value: Any) -> int | None:
    """Cohere's counts are JSON numbers that may be written as floats (12.0)."""
    if type(value) is float and math.isfinite(value) and value.is_integer():
        value = int(value)
    return token_count(value)


def annotations(citation: Any, offset: int = 0) -> list[Json]:
    """`url_citation` annotations for one Cohere citation of the answer's text."""
    if not isinstance(citation, dict) or citation.get("type") not in (None, "TEXT_CONTENT"):
        return []  # citations of the thinking or the tool plan point into other text
    start, end = citation.get("start"), citation.get("end")
    if not isinstance(start, int) or not isinstance(end, int):
        return []
    sources = citation.get("sources")
    out = []
    for source in sources if isinstance(sources, list) and sources else [{}]:
        if not isinstance(source, dict):
            continue
        fields = source.get("document") or source.get("tool_output") or {}
        fields = fields if isinstance(fields, dict) else {}
        url, title = fields.get("url"), fields.get("title")
        cited = {
            "start_index": offset + start,
            "end_index": offset + end,
            "url": url if isinstance(url, str) else "",
            "title": title if isinstance(title, str) else str(source.get("id") or ""),
        }
        out.append({"type": "url_citation", "url_citation": cited})
    return out


# --- complete answers ----------------------------------------------------------------------


def completion(body: bytes, target: Target) -> Json:
    data = decode_object(body)
    message = data.get("message")
    if not isinstance(message, dict):
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream chat answer has no message")
    texts: list[str] = []
    thoughts: list[str] = []
    starts: dict[int, int] = {}  # content index -> where its text starts in `content`
    length = 0
    for index, item in enumerate(message.get("content") or ()):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            starts[index] = length
            texts.append(item["text"])
            length += len(item["text"])
        elif kind == "thinking" and isinstance(item.get("thinking"), str):
            thoughts.append(item["thinking"])
    if isinstance(message.get("tool_plan"), str) and message["tool_plan"]:
        thoughts.append(message["tool_plan"])
    calls = [_tool_call(call) for call in message.get("tool_calls") or () if isinstance(call, dict)]
    out: Json = {"role": "assistant", "content": "".join(texts) or None, "refusal": None}
    if calls:
        out["tool_calls"] = calls
    if thoughts:
        out["reasoning_content"] = "".join(thoughts)
    cited = [
        annotation
        for citation in message.get("citations") or ()
        for annotation in annotations(citation, _offset(citation, starts))
    ]
    if cited:
        out["annotations"] = cited
    return {
        "id": data.get("id") or "cohere_unknown",
        "object": "chat.completion",
        "created": now(),
        "model": target.model,
        "choices": [
            {
                "index": 0,
                "message": out,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("finish_reason"), bool(calls)),
            }
        ],
        "usage": usage_of(checked_usage(data.get("usage"), target)).to_openai(),
    }


def _offset(citation: Any, starts: dict[int, int]) -> int:
    index = citation.get("content_index") if isinstance(citation, dict) else None
    return starts.get(index, 0) if isinstance(index, int) else 0


def _tool_call(call: Json) -> Json:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {
            "name": function.get("name"),
            "arguments": function.get("arguments") or "{}",
        },
    }


# --- streams -------------------------------------------------------------------------------


class StreamTranslator:
    """The events of one Cohere v2 stream as OpenAI chunks, in order. `finished` says whether
    message-end arrived (a stream that stops before it failed)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.id = "cohere_unknown"
        self.created = now()
        self.finished = False
        self._tool_index: dict[int, int] = {}  # Cohere's tool-call index -> ours
        self._text = 0  # characters of content so far
        self._starts: dict[int, int] = {}  # content index -> where its text starts

    def feed(self, event: Json) -> Iterator[Json]:
        handler = _HANDLERS.get(str(event.get("type")))
        return handler(self, event) if handler else iter(())

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.target.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _message_start(self, event: Json) -> Iterator[Json]:
        self.id = event.get("id") or self.id
        yield self._chunk({"role": "assistant", "content": ""})

    def _content(self, event: Json) -> Iterator[Json]:
        content = _path(event, "delta", "message", "content")
        if event.get("type") == "content-start" and isinstance(event.get("index"), int):
            self._starts[event["index"]] = self._text
        if not isinstance(content, dict):
            return
        if isinstance(text := content.get("text"), str) and text:
            self._text += len(text)
            yield self._chunk({"content": text})
        if isinstance(thinking := content.get("thinking"), str) and thinking:
            yield self._chunk({"reasoning_content": thinking})

    def _tool_plan(self, event: Json) -> Iterator[Json]:
        plan = _path(event, "delta", "message", "tool_plan")
        if isinstance(plan, str) and plan:
            yield self._chunk({"reasoning_content": plan})

    def _tool_call_start(self, event: Json) -> Iterator[Json]:
        call = _path(event, "delta", "message", "tool_calls")
        if not isinstance(call, dict):
            return
        index = event.get("index")
        ordinal = self._tool_index[index] = len(self._tool_index)
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments") or ""
        start = {
            "index": ordinal,
            "id": call.get("id"),
            "type": "function",
            "function": {"name": function.get("name"), "arguments": arguments},
        }
        yield self._chunk({"tool_calls": [start]})

    def _tool_call_delta(self, event: Json) -> Iterator[Json]:
        piece = _path(event, "delta", "message", "tool_calls", "function", "arguments")
        ordinal = self._tool_index.get(event.get("index"))  # type: ignore[arg-type]
        if isinstance(piece, str) and piece and ordinal is not None:
            call = {"index": ordinal, "function": {"arguments": piece}}
            yield self._chunk({"tool_calls": [call]})

    def _citation(self, event: Json) -> Iterator[Json]:
        citation = _path(event, "delta", "message", "citations")
        if isinstance(citation, dict):
            index = citation.get("content_index")
            offset = self._starts.get(index, 0) if isinstance(index, int) else 0
            if cited := annotations(citation, offset):
                yield self._chunk({"annotations": cited})

    def _message_end(self, event: Json) -> Iterator[Json]:
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        reason = delta.get("finish_reason")
        if reason in FAILURES or delta.get("error"):
            raise stream_error(str(reason), delta.get("error"))
        self.finished = True
        usage = usage_of(checked_usage(delta.get("usage"), self.target))
        yield self._chunk({}, finish_reason(reason, bool(self._tool_index)))
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage.to_openai()
        yield chunk


def _path(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


_HANDLERS = {
    "message-start": StreamTranslator._message_start,
    "content-start": StreamTranslator._content,
    "content-delta": StreamTranslator._content,
    "tool-plan-delta": StreamTranslator._tool_plan,
    "tool-call-start": StreamTranslator._tool_call_start,
    "tool-call-delta": StreamTranslator._tool_call_delta,
    "citation-start": StreamTranslator._citation,
    "message-end": StreamTranslator._message_end,
    # content-end, tool-call-end, citation-end and debug carry nothing a client needs.
}
