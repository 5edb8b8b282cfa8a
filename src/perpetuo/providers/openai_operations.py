"""The endpoints beside chat on OpenAI and the hosts that speak its format (images, audio,
text completions, moderations, and the Cohere-style rerank of vLLM and Jina): the client's
body goes upstream with only `model` swapped (uploads rebuilt around the same file bytes),
and the answer comes back as it was sent, read only to check it and to meter it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perpetuo.providers.base import (
    Json,
    OperationAnswer,
    Target,
    UpstreamCall,
    checked_usage,
    decode_object,
    encode_json,
)
from perpetuo.providers.multipart import encode_form
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import (
    AUDIO_TRANSCRIPTIONS,
    AUDIO_TRANSLATIONS,
    COMPLETIONS,
    OperationRequest,
)
from perpetuo.transport.url import URL

# Operations whose answer may be other than JSON (response_format text, srt, vtt).
TEXT_ANSWERS = frozenset({AUDIO_TRANSCRIPTIONS, AUDIO_TRANSLATIONS})


def build_call(
    url: URL,
    headers: list[tuple[str, str]],
    request: OperationRequest,
    target: Target,
    stream_usage: bool,
) -> UpstreamCall:
    if request.form is not None:
        pieces, content_type = encode_form(request.form.replaced("model", target.model))
        headers = [(k, v) for k, v in headers if k != "content-type"]
        headers.append(("content-type", content_type))
        return UpstreamCall(url, headers, pieces)
    body: Json = {**request.body, "model": target.model}
    if request.operation == COMPLETIONS and request.stream and stream_usage:
        # Always ask for usage: metering needs it even when the client did not.
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {})}
        body["stream_options"]["include_usage"] = True
    return UpstreamCall(url, headers, encode_json(body))


def read_answer(
    request: OperationRequest,
    body: bytes,
    content_type: str,
    target: Target,
    error_in_body: Callable[[Any], UpstreamError],
) -> OperationAnswer:
    """`error_in_body`: how the adapter reads an error object some hosts send with a 200."""
    if request.operation in TEXT_ANSWERS and not _is_json(content_type, body):
        return OperationAnswer(text=body, content_type=content_type or "text/plain")
    data = decode_object(body)
    if "error" in data and isinstance(data["error"], dict | str):
        raise error_in_body(data["error"])
    if request.operation == COMPLETIONS and not isinstance(data.get("choices"), list):
        raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream response has no choices")
    checked_usage(data.get("usage"), target)  # passed on as is: clamped in place
    return OperationAnswer(data)


def _is_json(content_type: str, body: bytes) -> bool:
    if "json" in content_type:
        return True
    return not content_type and body[:1] in (b"{", b"[")
