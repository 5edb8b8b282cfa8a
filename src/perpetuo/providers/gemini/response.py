"""Gemini answers (GenerateContentResponse) as OpenAI chat completions and chunks.

- One choice per candidate, indexed by `candidate.index`. Text parts are joined; `thought`
  parts (reasoning summaries) are left out; functionCall parts become tool calls whose ids
  are synthesized (see toolids).
- A prompt blocked by `promptFeedback.blockReason` has no candidates at all: there is no
  completion to return, and the same prompt would be refused again, so it is a 400
  CONTENT_POLICY error for the client rather than an empty `content_filter` choice.
- Usage: prompt = promptTokenCount (which includes cached tokens) plus
  toolUsePromptTokenCount; completion = candidatesTokenCount + thoughtsTokenCount, since
  thinking tokens are generated and billed as output; cached and reasoning tokens are
  reported in the details. No usageMetadata means no usage: the pipeline then estimates.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from perpetuo.providers.base import (
    Json,
    Target,
    checked_usage,
    decode_object,
    encode_json,
    now,
)
from perpetuo.providers.gemini.errors import error_in_body
from perpetuo.providers.gemini.toolids import make_call_id
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import Usage, token_count
from perpetuo.transport.sse import SSEEvent

FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}  # anything else (OTHER, MALFORMED_FUNCTION_CALL, ...) ends the choice as "stop"


def finish_reason(reason: str, has_tool_calls: bool) -> str:
    mapped = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if mapped == "stop" and has_tool_calls else mapped


def completion(data: Json, target: Target) -> Json:
    """The OpenAI `chat.completion` for a generateContent response."""
    candidates = _candidates(data)
    completion_id = _response_id(data)
    choices = []
    numbered = any("index" in cand for cand in candidates)
    for position, cand in enumerate(candidates):
        index = _index(cand, 0 if numbered else position)
        texts, calls = read_parts(_parts(cand), completion_id, index)
        message: Json = {
            "role": "assistant",
            "content": "".join(texts) if texts else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": logprobs(cand.get("logprobsResult")),
                "finish_reason": finish_reason(
                    str(cand.get("finishReason") or "STOP"), bool(calls)
                ),
            }
        )
    body: Json = {
        "id": completion_id,
        "object": "chat.completion",
        "created": now(),
        "model": data.get("modelVersion") or target.model,
        "choices": sorted(choices, key=lambda c: c["index"]),
    }
    if (usage := read_usage(checked_usage(data.get("usageMetadata"), target))) is not None:
        body["usage"] = usage.to_openai()
    return body


def _candidates(data: Json) -> list[Json]:
    """The candidates, or the error that explains their absence."""
    if "error" in data:
        raise error_in_body(data["error"])
    candidates = [c for c in data.get("candidates") or () if isinstance(c, dict)]
    if not candidates:
        _raise_if_blocked(data)
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream response has no candidates")
    return candidates


def _raise_if_blocked(data: Json) -> None:
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        raise UpstreamError(
            UpstreamErrorKind.CONTENT_POLICY,
            f"The prompt was blocked by the provider's safety filters (reason: {reason}).",
            status=400,
        )


def _response_id(data: Json) -> str:
    response_id = data.get("responseId")
    if isinstance(response_id, str) and response_id:
        return response_id
    return f"chatcmpl-{uuid.uuid4().hex}"


def _index(candidate: Json, default: int = 0) -> int:
    """The candidate's index; protobuf JSON omits it when it is 0, so missing means 0 unless
    no candidate has one (then their order is all there is)."""
    index = candidate.get("index")
    return index if isinstance(index, int) else default


def _parts(candidate: Json) -> list[Json]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts or () if isinstance(p, dict)]


def read_parts(
    parts: list[Json], seed: str, candidate: int, first_call: int = 0
) -> tuple[list[str], list[Json]]:
    """(texts, OpenAI tool calls) of a candidate's parts; calls numbered from `first_call`."""
    texts: list[str] = []
    calls: list[Json] = []
    for part in parts:
        if part.get("thought") is True:
            continue
        text = part.get("text")
        if isinstance(text, str) and text:
            texts.append(text)
        call = part.get("functionCall")
        if isinstance(call, dict):
            name = str(call.get("name") or "")
            position = first_call + len(calls)
            call_id = call.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = make_call_id(
                    seed, candidate, position, name, part.get("thoughtSignature")
                )
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": _arguments(call.get("args"))},
                }
            )
    return texts, calls


def _arguments(args: Any) -> str:
    return encode_json(args if isinstance(args, dict) else {}).decode()


def read_usage(meta: Any) -> Usage | None:
    if not isinstance(meta, dict):
        return None

    def count(name: str) -> int:
        return token_count(meta.get(name)) or 0

    if "promptTokenCount" not in meta and "candidatesTokenCount" not in meta:
        return None
    thoughts = count("thoughtsTokenCount")
    return Usage(
        prompt_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        completion_tokens=count("candidatesTokenCount") + thoughts,
        cached_tokens=count("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def logprobs(result: Any) -> Json | None:
    """OpenAI `logprobs` from a candidate's `logprobsResult`."""
    if not isinstance(result, dict):
        return None
    chosen = [t for t in result.get("chosenCandidates") or () if isinstance(t, dict)]
    tops = [t if isinstance(t, dict) else {} for t in result.get("topCandidates") or ()]
    content = []
    for step, token in enumerate(chosen):
        top = tops[step].get("candidates") or [] if step < len(tops) else []
        entry = _token(token)
        entry["top_logprobs"] = [_token(t) for t in top if isinstance(t, dict)]
        content.append(entry)
    return {"content": content, "refusal": None}


def _token(token: Json) -> Json:
    text = str(token.get("token", ""))
    logprob = token.get("logProbability")
    return {
        "token": text,
        "logprob": float(logprob) if isinstance(logprob, int | float) else 0.0,
        "bytes": list(text.encode()),
    }


# --- streams -------------------------------------------------------------------------------


class StreamTranslator:
    """Turns each streamed GenerateContentResponse into one chunk (or none)."""

    def __init__(self, target: Target) -> None:
        self.id = ""
        self.target = target
        self.model = target.model
        self.created = now()
        self.started: set[int] = set()  # candidates whose role was sent
        self.call_counts: dict[int, int] = {}
        self.usage: Usage | None = None

    def chunk(self, data: Json) -> Json | None:
        if "error" in data:
            raise error_in_body(data["error"])
        if not data.get("candidates"):
            _raise_if_blocked(data)  # a blocked prompt fails before anything is sent
        if not self.id:
            self.id = _response_id(data)
        if isinstance(data.get("modelVersion"), str):
            self.model = data["modelVersion"]
        meta = checked_usage(data.get("usageMetadata"), self.target)
        self.usage = read_usage(meta) or self.usage
        choices = [c for cand in data.get("candidates") or () if (c := self._choice(cand))]
        return self._envelope(choices) if choices else None

    def _choice(self, cand: Any) -> Json | None:
        if not isinstance(cand, dict):
            return None
        index = _index(cand)
        first = self.call_counts.get(index, 0)
        texts, calls = read_parts(_parts(cand), self.id, index, first)
        delta: Json = {}
        if index not in self.started:
            self.started.add(index)
            delta["role"] = "assistant"
        if texts:
            delta["content"] = "".join(texts)
        if calls:
            delta["tool_calls"] = [{"index": first + n, **c} for n, c in enumerate(calls)]
            self.call_counts[index] = first + len(calls)
        reason = cand.get("finishReason")
        finish = finish_reason(str(reason), self.call_counts.get(index, 0) > 0) if reason else None
        if not delta and finish is None:
            return None  # an event with empty parts: nothing to say
        return {
            "index": index,
            "delta": delta,
            "logprobs": logprobs(cand.get("logprobsResult")),
            "finish_reason": finish,
        }

    def _envelope(self, choices: list[Json]) -> Json:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def usage_chunk(self) -> Json | None:
        if self.usage is None:
            return None
        chunk = self._envelope([])
        chunk["usage"] = self.usage.to_openai()
        return chunk


async def stream_chunks(events: AsyncIterator[SSEEvent], target: Target) -> AsyncIterator[Json]:
    """OpenAI chunks for a `streamGenerateContent?alt=sse` stream; usage in a final chunk."""
    translator = StreamTranslator(target)
    async for event in events:
        if not event.data or event.data == "[DONE]":
            continue
        chunk = translator.chunk(decode_object(event.data, "stream event"))
        if chunk is not None:
            yield chunk
    if (last := translator.usage_chunk()) is not None:
        yield last
