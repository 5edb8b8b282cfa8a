"""GatewayError -> Anthropic's error shape, as an HTTP answer or as an in-stream event.

Anthropic answers `{"type": "error", "error": {"type", "message"}, "request_id"}`, with one
error type per status (https://docs.anthropic.com/en/api/errors). The gateway's statuses map
onto those: a budget or credits refusal (402) is a billing_error, an unavailable service
(503) is Anthropic's 529 overloaded_error so that its SDKs retry it as they retry Anthropic,
and other statuses keep their number with the nearest type.
"""

from __future__ import annotations

from typing import Any

import msgspec

from perpetuo.schema.errors import GatewayError

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OVERLOADED = 529
# Statuses Anthropic does not use that have one it does for the same meaning.
_STATUSES = {503: OVERLOADED}


def status_and_type(error: GatewayError) -> tuple[int, str]:
    status = _STATUSES.get(error.status, error.status)
    if status in ERROR_TYPES:
        return status, ERROR_TYPES[status]
    # Anthropic: "invalid_request_error ... may also be used for other 4XX status codes".
    return status, "invalid_request_error" if 400 <= status < 500 else "api_error"


def render(error: GatewayError, request_id: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    """(status, JSON body, headers to add such as retry-after) for a non-stream answer."""
    status, kind = status_and_type(error)
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": error.message}}
    if request_id is not None:
        body["request_id"] = request_id
    return status, msgspec.json.encode(body), dict(error.headers)


def stream_event(error: GatewayError) -> dict[str, Any]:
    """The `error` event that ends a stream which already answered 200."""
    return {"type": "error", "error": {"type": status_and_type(error)[1], "message": error.message}}
