"""Cohere's errors -> UpstreamError.

Cohere answers `{"id", "message"}` (older APIs: `{"message"}`) with a status that says the
kind: 400 and 422 the request, 401 and 498 (an invalid or revoked token) and 402 and 403 our
key or account, 404 the model, 429 rate and trial-key limits, 499 a request cancelled,
501 a feature the model does not offer, 503 overload, 504 a timeout. A stream that fails
after it began ends with a `message-end` whose finish_reason is ERROR or TIMEOUT (read in
chat.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from perpetuo.providers.upstream_errors import (
    looks_like_context_overflow,
    redact_secrets,
    retry_after,
    status_kind,
)
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind

K = UpstreamErrorKind

STATUS_KINDS: dict[int, UpstreamErrorKind] = {
    402: K.AUTH,  # our account cannot pay: another deployment may serve
    422: K.INVALID_REQUEST,
    498: K.AUTH,  # "invalid api token"
    499: K.SERVER,  # cancelled upstream, not by our client (who would not be waiting)
    501: K.UNSUPPORTED,  # "this model does not support ...": another deployment may
}


def http_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    message = _message(body) or f"upstream returned HTTP {status}"
    kind = STATUS_KINDS.get(status) or status_kind(status)
    if kind is K.INVALID_REQUEST and looks_like_context_overflow(message):
        kind = K.CONTEXT_LENGTH  # "too many tokens: total number of tokens ... cannot exceed"
    return UpstreamError(
        kind,
        redact_secrets(message[:2000]),
        status=400 if kind is K.UNSUPPORTED else status,
        retry_after=retry_after(headers),
    )


def stream_error(finish_reason: str, message: object) -> UpstreamError:
    """A stream that ended in failure (finish_reason ERROR or TIMEOUT)."""
    text = message if isinstance(message, str) and message else "upstream generation failed"
    kind = K.TIMEOUT if finish_reason == "TIMEOUT" else K.SERVER
    return UpstreamError(kind, redact_secrets(text[:2000]), status=502)


def _message(body: bytes) -> str | None:
    try:
        payload = msgspec.json.decode(body) if body else None
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    message = payload.get("message")
    if isinstance(message, str):
        return message
    error = payload.get("error")  # proxies in front of Cohere answer OpenAI's shape
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return error if isinstance(error, str) else None
