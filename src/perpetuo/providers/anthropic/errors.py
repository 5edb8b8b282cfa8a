"""Anthropic's error objects -> UpstreamError.

Anthropic answers `{"type": "error", "error": {"type", "message"}}`, over HTTP or as an
`error` event inside a stream that already answered 200. The error type decides the kind;
the HTTP status is the fallback for bodies that are not Anthropic's (proxies, Cloudflare).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from perpetuo.providers.upstream_errors import (
    looks_like_context_overflow,
    redact_secrets,
    retry_after,
)
from perpetuo.providers.upstream_errors import status_kind as kind_of_status
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind

K = UpstreamErrorKind

# Documented error types: the status Anthropic sends with each, and what it means for routing.
ERROR_TYPES: dict[str, tuple[int, UpstreamErrorKind]] = {
    "invalid_request_error": (400, K.INVALID_REQUEST),
    "authentication_error": (401, K.AUTH),
    "billing_error": (402, K.AUTH),  # our account cannot pay: another deployment may serve
    "permission_error": (403, K.AUTH),
    "not_found_error": (404, K.NOT_FOUND),
    "request_too_large": (413, K.INVALID_REQUEST),  # bytes, not tokens: 32 MB per request
    "rate_limit_error": (429, K.RATE_LIMIT),
    "api_error": (500, K.SERVER),
    "timeout_error": (504, K.TIMEOUT),
    "overloaded_error": (529, K.OVERLOADED),
}


def http_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """Classify a non-2xx answer."""
    err_type, message = _parse(body)
    if status == 413:
        err_type = "request_too_large"  # sent by Cloudflare, often without a JSON body
    return _classify(status, err_type, message or f"upstream returned HTTP {status}", headers)


def payload_error(payload: Any) -> UpstreamError:
    """Classify an error object found in a 200 body or a stream `error` event."""
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    err_type = error.get("type") if isinstance(error.get("type"), str) else None
    status = ERROR_TYPES.get(err_type or "", (500, K.SERVER))[0]
    message = str(error.get("message") or "upstream reported an error")
    return _classify(status, err_type, message, {})


def _parse(body: bytes) -> tuple[str | None, str | None]:
    try:
        payload = msgspec.json.decode(body) if body else None
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None, None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None, None
    err_type, message = error.get("type"), error.get("message")
    return (
        err_type if isinstance(err_type, str) else None,
        message if isinstance(message, str) else None,
    )


def _classify(
    status: int, err_type: str | None, message: str, headers: Mapping[str, str]
) -> UpstreamError:
    known = ERROR_TYPES.get(err_type or "")
    kind = known[1] if known else kind_of_status(status)
    too_large = err_type == "request_too_large"
    if kind is K.INVALID_REQUEST and not too_large and looks_like_context_overflow(message):
        kind = K.CONTEXT_LENGTH  # "prompt is too long: 210000 tokens > 200000 maximum"
    return UpstreamError(
        kind,
        redact_secrets(message),
        status=status,
        code=err_type if too_large else None,
        retry_after=retry_after(headers),
    )
