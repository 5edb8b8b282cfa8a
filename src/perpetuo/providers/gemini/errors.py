"""Google's error shape, `{"error": {"code", "message", "status", "details"}}`, classified.

The canonical `status` string decides, more than the HTTP code: an invalid API key is a 400
INVALID_ARGUMENT whose details carry reason API_KEY_INVALID, but it is the gateway's own
credential that failed, so it is AUTH and the router moves on to another deployment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from perpetuo.providers.upstream_errors import (
    bounded_wait,
    looks_like_context_overflow,
    redact_secrets,
    retry_after,
    status_kind,
)
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind

K = UpstreamErrorKind

STATUS_KINDS: dict[str, UpstreamErrorKind] = {
    "INVALID_ARGUMENT": K.INVALID_REQUEST,
    "OUT_OF_RANGE": K.INVALID_REQUEST,
    # Billing, region or free-tier limits of our account: another deployment may serve.
    "FAILED_PRECONDITION": K.AUTH,
    "UNAUTHENTICATED": K.AUTH,
    "PERMISSION_DENIED": K.AUTH,
    "NOT_FOUND": K.NOT_FOUND,
    "RESOURCE_EXHAUSTED": K.RATE_LIMIT,
    "UNIMPLEMENTED": K.UNSUPPORTED,
    "CANCELLED": K.SERVER,
    "ABORTED": K.SERVER,
    "UNKNOWN": K.SERVER,
    "INTERNAL": K.SERVER,
    "DATA_LOSS": K.SERVER,
    "UNAVAILABLE": K.OVERLOADED,
    "DEADLINE_EXCEEDED": K.TIMEOUT,
}

# ErrorInfo reasons that mean the gateway's key or project was refused, whatever the status.
CREDENTIAL_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
        "SERVICE_DISABLED",
        "CONSUMER_SUSPENDED",
        "BILLING_DISABLED",
    }
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """An UpstreamError for a non-2xx answer (a JSON object, or a one-element JSON array
    as streamGenerateContent sends without `alt=sse`)."""
    try:
        payload: Any = msgspec.json.decode(body) if body else None
    except (msgspec.DecodeError, UnicodeDecodeError):
        payload = None
    if isinstance(payload, list) and payload:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error_from_object(error if isinstance(error, dict) else {}, status, headers)


def error_from_object(
    error: dict[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> UpstreamError:
    message = str(error.get("message") or f"upstream returned HTTP {status}")
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    reasons = {d.get("reason") for d in details}
    kind = STATUS_KINDS.get(str(error.get("status"))) or status_kind(status)
    if reasons & CREDENTIAL_REASONS:
        kind = K.AUTH
    elif kind is K.INVALID_REQUEST and looks_like_context_overflow(message):
        kind = K.CONTEXT_LENGTH
    wait = retry_after(headers) if headers else None
    if wait is None:
        wait = retry_delay(details)
    return UpstreamError(kind, redact_secrets(message), status=status, retry_after=wait)


def error_in_body(error: Any) -> UpstreamError:
    """An error object inside a 200 body or stream; its `code` is the HTTP status meant."""
    if not isinstance(error, dict):
        return UpstreamError(K.SERVER, redact_secrets(str(error)), status=500)
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return error_from_object(error, status)


def retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a google.rpc.RetryInfo detail (`"retryDelay": "7s"`)."""
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            match = _DURATION.match(delay) if isinstance(delay, str) else None
            if match:
                return bounded_wait(float(match.group(1)))
    return None
