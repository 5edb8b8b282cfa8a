"""The OpenAI Responses API as a provider wire format (OpenAI and Azure deployments).

Pure functions: a `response` object -> chat.completion, and Responses stream events -> chat
chunks. On the native lane the client gets the provider's bytes verbatim and these read them
on the side (metering, guardrails, cache). Text becomes `content`, function and custom tool
calls `tool_calls` (id = call_id, so the ids survive a round trip), reasoning items ride
verbatim in `thinking_blocks` with their summaries as `reasoning_content`, an incomplete
response finishes with `length` or `content_filter`, and a failure raises UpstreamError.
"""

from __future__ import annotations

from typing import Any

from perpetuo.providers.base import Json, Target, checked_usage, decode_object, now
from perpetuo.providers.upstream_errors import looks_like_context_overflow, redact_secrets
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.usage import Usage, token_count

K = UpstreamErrorKind

INCOMPLETE_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}

# response.error.code (a closed list in the API reference) and stream `error` codes.
FAILURE_KINDS: dict[str, UpstreamErrorKind] = {
    "rate_limit_exceeded": K.RATE_LIMIT,
    "insufficient_quota": K.AUTH,  # our account cannot pay: another deployment may serve
    "server_error": K.SERVER,
    "vector_store_timeout": K.TIMEOUT,
    "context_length_exceeded": K.CONTEXT_LENGTH,
    "invalid_prompt": K.CONTENT_POLICY,
    "bio_policy": K.CONTENT_POLICY,
    "misalignment_policy_violation": K.CONTENT_POLICY,
    "image_content_policy_violation": K.CONTENT_POLICY,
    "invalid_request_error": K.INVALID_REQUEST,
}
_KIND_STATUS = {K.RATE_LIMIT: 429, K.AUTH: 401, K.TIMEOUT: 504, K.SERVER: 500}


def failure(error: Any) -> UpstreamError:
    """Classify a Responses error object (`response.error`, or an `error` stream event)."""
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = str(error.get("message") or "upstream reported a failed response")
    kind = FAILURE_KINDS.get(code or "")
    if kind is None:
        # Image codes (invalid_image, image_too_large, ...) are the client's input.
        image_fault = code is not None and "image" in code
        kind = K.INVALID_REQUEST if image_fault else K.SERVER
        if looks_like_context_overflow(message, code):
            kind = K.CONTEXT_LENGTH
    param = error.get("param")
    return UpstreamError(
        kind,
        redact_secrets(message[:2000]),
        status=_KIND_STATUS.get(kind, 400),
        param=redact_secrets(param[:200]) if isinstance(param, str) else None,
        code=redact_secrets(code[:100]) if code else None,
    )


def usage_of(usage: Any) -> Usage | None:
    """Responses usage counts cached and cache-write tokens inside input_tokens, as chat."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = (
        token_count(usage.get("input_tokens")),
        token_count(usage.get("output_tokens")),
    )
    if prompt is None and completion is None:
        return None
    inputs = usage.get("input_tokens_details")
    outputs = usage.get("output_tokens_details")
    inputs, outputs = (d if isinstance(d, dict) else {} for d in (inputs, outputs))
    return Usage(
        prompt_tokens=prompt or 0,
        completion_tokens=completion or 0,
        cached_tokens=token_count(inputs.get("cached_tokens")) or 0,
        cache_write_tokens=token_count(inputs.get("cache_write_tokens")) or 0,
        reasoning_tokens=token_count(outputs.get("reasoning_tokens")) or 0,
    )


def finish_reason(response: Json, made_calls: bool) -> str:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return INCOMPLETE_FINISH.get(reason, "length") if isinstance(reason, str) else "length"
    return "tool_calls" if made_calls else "stop"


# --- complete responses --------------------------------------------------------------------


def to_chat(body: bytes, target: Target) -> Json:
    data = decode_object(body)
    if data.get("status") == "failed" or ("error" in data and "output" not in data):
        raise failure(data.get("error"))
    output = data.get("output")
    if not isinstance(output, list):
        raise UpstreamError(K.BAD_RESPONSE, "upstream response has no output")
    texts: list[str] = []
    refusals: list[str] = []
    logprobs: list[Any] = []
    calls: list[Json] = []
    blocks: list[Json] = []
    for item in output:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            for part in item.get("content") or []:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                    logprobs.extend(part.get("logprobs") or [])
                elif part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal") or ""))
        elif kind in ("function_call", "custom_tool_call"):
            calls.append(tool_call(item))
        elif kind == "reasoning":
            blocks.append(item)
        # Server tools' items (web_search_call, ...) have no chat form: the client got them.
    message: Json = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": "".join(refusals) or None,
    }
    if calls:
        message["tool_calls"] = calls
    if blocks:
        message["thinking_blocks"] = blocks
        if thoughts := [t for block in blocks for t in reasoning_texts(block)]:
            message["reasoning_content"] = "\n\n".join(thoughts)
    created = data.get("created_at")
    chat: Json = {
        "id": data.get("id") or "resp_unknown",
        "object": "chat.completion",
        "created": int(created) if type(created) in (int, float) else now(),
        "model": data.get("model") or target.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": {"content": logprobs, "refusal": None} if logprobs else None,
                "finish_reason": finish_reason(data, bool(calls)),
            }
        ],
    }
    if (usage := usage_of(checked_usage(data.get("usage"), target))) is not None:
        chat["usage"] = usage.to_openai()
    if isinstance(data.get("service_tier"), str):
        chat["service_tier"] = data["service_tier"]
    return chat


def tool_call(item: Json) -> Json:
    if item.get("type") == "custom_tool_call":
        custom = {"name": item.get("name") or "", "input": item.get("input") or ""}
        return {"id": item.get("call_id"), "type": "custom", "custom": custom}
    function = {"name": item.get("name") or "", "arguments": item.get("arguments") or ""}
    return {"id": item.get("call_id"), "type": "function", "function": function}


def reasoning_texts(item: Json) -> list[str]:
    """The readable text of a reasoning item: its summaries, then any reasoning_text."""
    texts = []
    for key in ("summary", "content"):
        entries = item.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("text"), str) and entry["text"]:
                texts.append(entry["text"])
    return texts


# --- streams -------------------------------------------------------------------------------


class ResponsesStreamToChat:
    """Turns the events of one Responses stream (decoded `data` objects) into chat chunks.

    `feed` returns the chunks an event makes; `finished` says whether response.completed
    or response.incomplete arrived (a stream that stops before is cut short).
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.id = "resp_unknown"
        self.model = target.model
        self.created = now()
        self.finished = False
        self.usage: Usage | None = None
        self._started = False
        self._calls: dict[Any, int] = {}  # output_index -> chat tool call index
        self._sent: dict[int, str] = {}  # chat tool call index -> arguments sent so far
        self._thought_at: Any = None  # the reasoning part last streamed from
        self._custom: set[int] = set()

    def feed(self, event: Json) -> list[Json]:
        handler = _HANDLERS.get(str(event.get("type")))
        return handler(self, event) if handler else []

    def wants(self, name: str) -> bool:
        """Can an event of this SSE name make chunks? Those that cannot need not be decoded:
        part and text *.done events repeat the deltas (and may hold the whole text), and
        once the response has started, response.in_progress repeats response.created."""
        if self._started and name in _REPEATS_CREATED:
            return False
        return not name or name in _HANDLERS

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _lifecycle(self, event: Json) -> list[Json]:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        self.id = response.get("id") or self.id
        self.model = response.get("model") or self.model
        if type(created := response.get("created_at")) in (int, float):
            self.created = int(created)
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _item_added(self, event: Json) -> list[Json]:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        if item.get("type") not in ("function_call", "custom_tool_call"):
            return []
        index = self._calls[event.get("output_index")] = len(self._calls)
        call = tool_call(item)
        body = call["custom" if call["type"] == "custom" else "function"]
        sent = body.get("input" if call["type"] == "custom" else "arguments") or ""
        if call["type"] == "custom":
            self._custom.add(index)
        self._sent[index] = sent
        return [self._chunk({"tool_calls": [{"index": index, **call}]})]

    def _arguments(self, event: Json, piece: Any) -> list[Json]:
        index = self._calls.get(event.get("output_index"))
        if index is None or not isinstance(piece, str) or not piece:
            return []
        self._sent[index] += piece
        if index in self._custom:
            return [self._chunk({"tool_calls": [{"index": index, "custom": {"input": piece}}]})]
        call = {"index": index, "function": {"arguments": piece}}
        return [self._chunk({"tool_calls": [call]})]

    def _arguments_delta(self, event: Json) -> list[Json]:
        return self._arguments(event, event.get("delta"))

    def _arguments_done(self, event: Json, whole: Any = None) -> list[Json]:
        """Send what the deltas left out (some hosts send only the complete arguments)."""
        index = self._calls.get(event.get("output_index"))
        whole = whole if whole is not None else event.get("arguments", event.get("input"))
        if index is None or not isinstance(whole, str):
            return []
        sent = self._sent[index]
        if len(whole) > len(sent) and whole.startswith(sent):
            return self._arguments(event, whole[len(sent) :])
        return []

    def _item_done(self, event: Json) -> list[Json]:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        kind = item.get("type")
        if kind == "reasoning":
            return [self._chunk({"thinking_blocks": [item]})]
        if kind == "function_call":
            return self._arguments_done(event, item.get("arguments"))
        if kind == "custom_tool_call":
            return self._arguments_done(event, item.get("input"))
        return []

    def _text(self, event: Json) -> list[Json]:
        delta = event.get("delta")
        return [self._chunk({"content": delta})] if isinstance(delta, str) and delta else []

    def _refusal(self, event: Json) -> list[Json]:
        delta = event.get("delta")
        return [self._chunk({"refusal": delta})] if isinstance(delta, str) and delta else []

    def _thought(self, event: Json) -> list[Json]:
        delta = event.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        where = (event.get("item_id"), event.get("type"), event.get("summary_index"))
        where += (event.get("content_index"),)
        if self._thought_at is not None and where != self._thought_at:
            delta = "\n\n" + delta  # parts and items apart, as to_chat joins them
        self._thought_at = where
        return [self._chunk({"reasoning_content": delta})]

    def _end(self, event: Json) -> list[Json]:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        self.finished = True
        self.usage = usage_of(checked_usage(response.get("usage"), self.target))
        chunks = [self._chunk({}, finish_reason(response, bool(self._calls)))]
        if self.usage is not None:
            tail = self._chunk({})
            tail["choices"] = []
            tail["usage"] = self.usage.to_openai()
            chunks.append(tail)
        return chunks

    def _failed(self, event: Json) -> list[Json]:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        raise failure(response.get("error"))

    def _error(self, event: Json) -> list[Json]:
        raise failure(event.get("error") if isinstance(event.get("error"), dict) else event)


_S = ResponsesStreamToChat
_REPEATS_CREATED = frozenset({"response.in_progress", "response.queued"})
_HANDLERS = {
    "response.created": _S._lifecycle,
    "response.in_progress": _S._lifecycle,
    "response.queued": _S._lifecycle,
    "response.output_item.added": _S._item_added,
    "response.output_item.done": _S._item_done,
    "response.output_text.delta": _S._text,
    "response.refusal.delta": _S._refusal,
    "response.function_call_arguments.delta": _S._arguments_delta,
    "response.function_call_arguments.done": _S._arguments_done,
    "response.custom_tool_call_input.delta": _S._arguments_delta,
    "response.custom_tool_call_input.done": _S._arguments_done,
    "response.reasoning_summary_text.delta": _S._thought,
    "response.reasoning_text.delta": _S._thought,
    "response.completed": _S._end,
    "response.incomplete": _S._end,
    "response.failed": _S._failed,
    "error": _S._error,
    # Part added/done and *.done text events repeat what the deltas said.
}
