"""Upstream errors in the gateway's terms: the kind of a status, an OpenAI-style error body
classified (context length, content policy, quota), the wait an upstream asks for bounded,
and credentials masked out of any text an upstream sends back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from perpetuo.guardrails.scrub import scrub
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind

RETRY_AFTER_CEILING = 3600.0  # no upstream sets a deployment aside longer, whatever is set


def bounded_wait(seconds: float | None, limit: float = RETRY_AFTER_CEILING) -> float | None:
    """The one clamp for waits an upstream asks for: None stays None (and NaN becomes it),
    negative is 0, nothing is longer than `limit` (upstream_limits.max_retry_after)."""
    if seconds is None or seconds != seconds:
        return None
    return 0.0 if seconds < 0 else seconds if seconds <= limit else limit


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from retry-after-ms, retry-after (seconds or HTTP date), bounded."""
    if ms := headers.get("retry-after-ms"):
        try:
            return bounded_wait(float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return bounded_wait(float(value))
    except ValueError:
        pass
    try:
        return bounded_wait(parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def redact_secrets(text: str) -> str:
    """Mask anything shaped like a credential or a path before it reaches a client or a log
    (the guardrails' secret detectors, plus assignments, bearer tokens and file paths)."""
    return scrub(text)


def status_kind(status: int) -> UpstreamErrorKind:
    if status in (401, 403):
        return UpstreamErrorKind.AUTH
    if status == 404:
        return UpstreamErrorKind.NOT_FOUND
    if status in (408, 504):
        return UpstreamErrorKind.TIMEOUT
    if status == 413:
        return UpstreamErrorKind.CONTEXT_LENGTH
    if status == 429:
        return UpstreamErrorKind.RATE_LIMIT
    if status == 508:  # a gateway upstream saw this request loop: retrying would loop again
        return UpstreamErrorKind.INVALID_REQUEST
    if status in (503, 529):
        return UpstreamErrorKind.OVERLOADED
    if status >= 500:
        return UpstreamErrorKind.SERVER
    return UpstreamErrorKind.INVALID_REQUEST


_CONTEXT_HINTS = (
    "context_length_exceeded",
    "context length",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "exceeds the maximum",
)


def looks_like_context_overflow(*texts: object) -> bool:
    joined = " ".join(str(t).lower() for t in texts if t)
    return any(hint in joined for hint in _CONTEXT_HINTS)


def openai_style_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """Classify `{"error": {"message", "type", "param", "code"}}` (OpenAI and most hosts)."""
    message, code, param, err_type = f"upstream returned HTTP {status}", None, None, None
    try:
        payload = msgspec.json.decode(body) if body else None
    except (msgspec.DecodeError, UnicodeDecodeError):
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            message = _message_text(error.get("message")) or message
            code = error.get("code")
            param = error.get("param")
            err_type = error.get("type")
        elif isinstance(error, str):
            message = error
    kind = status_kind(status)
    code_text = str(code) if code is not None else None
    if kind is UpstreamErrorKind.INVALID_REQUEST:
        if code_text == "context_length_exceeded" or looks_like_context_overflow(message, code):
            kind = UpstreamErrorKind.CONTEXT_LENGTH
        elif code_text in ("content_filter", "content_policy_violation") or (
            err_type == "content_filter"
        ):
            kind = UpstreamErrorKind.CONTENT_POLICY
    if kind is UpstreamErrorKind.RATE_LIMIT and code_text == "insufficient_quota":
        kind = UpstreamErrorKind.AUTH  # our account is out of credit: another deployment may serve
    return UpstreamError(
        kind,
        redact_secrets(message[:2000]),
        status=status,
        param=redact_secrets(param[:200]) if isinstance(param, str) else None,
        code=redact_secrets(code_text[:100]) if code_text is not None else None,
        retry_after=retry_after(headers),
    )


def _message_text(message: Any) -> str | None:
    """An error message as text: a string, or the `msg` of each item of a validation
    error's `detail` (Mistral answers 422 with `{"message": {"detail": [...]}}`)."""
    if isinstance(message, str):
        return message or None
    detail = message.get("detail") if isinstance(message, dict) else message
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                where = ".".join(str(p) for p in item.get("loc") or () if p != "body")
                parts.append(f"{where}: {item['msg']}" if where else item["msg"])
        return "; ".join(parts) or None
    return str(message) if message else None
