"""Bedrock's errors -> UpstreamError.

Over HTTP, Bedrock (a rest-json AWS service) names the error in the `x-amzn-errortype`
header (`ValidationException:http://internal.amazon.com/...`) and sometimes in the body's
`__type`, with the text in `message` (or `Message`). Inside a stream that already answered
200, an event-stream message of `:message-type` `exception` names it in `:exception-type`
(camel-cased: `throttlingException`) with `{"message": ...}` as payload. The name decides the
kind; the status is the fallback for answers that are not Bedrock's (proxies, load balancers).
Image models' content-filter refusals are ValidationExceptions saying so: content policy.
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

# Documented error names (lower-cased), with the status Bedrock sends and the routing meaning.
ERRORS: dict[str, tuple[int, UpstreamErrorKind]] = {
    "validationexception": (400, K.INVALID_REQUEST),
    "conflictexception": (400, K.INVALID_REQUEST),
    # Our account's quota, not the request: another deployment (region, account) may serve.
    "servicequotaexceededexception": (400, K.RATE_LIMIT),
    "accessdeniedexception": (403, K.AUTH),
    # Raised by AWS's authentication layer before Bedrock sees the request.
    "unrecognizedclientexception": (403, K.AUTH),
    "invalidsignatureexception": (403, K.AUTH),
    "signaturedoesnotmatch": (403, K.AUTH),
    "incompletesignatureexception": (403, K.AUTH),
    "missingauthenticationtokenexception": (403, K.AUTH),
    "expiredtokenexception": (403, K.AUTH),
    "invalidclienttokenid": (403, K.AUTH),
    "resourcenotfoundexception": (404, K.NOT_FOUND),
    "modeltimeoutexception": (408, K.TIMEOUT),
    "throttlingexception": (429, K.RATE_LIMIT),
    "toomanyrequestsexception": (429, K.RATE_LIMIT),
    "modelnotreadyexception": (429, K.OVERLOADED),  # the model is loading: soon ready
    "modelerrorexception": (424, K.SERVER),
    "modelstreamerrorexception": (424, K.SERVER),
    "internalserverexception": (500, K.SERVER),
    "serviceunavailableexception": (503, K.OVERLOADED),
}


def error_name(value: Any) -> str | None:
    """`ValidationException` from the header's or `__type`'s decorated forms."""
    if not isinstance(value, str) or not value:
        return None
    name = value.split(":", 1)[0]  # "ValidationException:http://internal.amazon.com/..."
    return name.rsplit("#", 1)[-1]  # "com.amazon.coral.validate#ValidationException"


def http_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """Classify a non-2xx answer."""
    try:
        payload = msgspec.json.decode(body) if body else None
    except (msgspec.DecodeError, UnicodeDecodeError):
        payload = None
    payload = payload if isinstance(payload, dict) else {}
    name = error_name(headers.get("x-amzn-errortype")) or error_name(
        payload.get("__type") or payload.get("code")
    )
    message = payload.get("message") or payload.get("Message")
    text = message if isinstance(message, str) and message else f"upstream returned HTTP {status}"
    return classify(name, text, status, retry_after(headers))


def stream_exception(name: str | None, payload: bytes) -> UpstreamError:
    """An exception event inside a stream (`:exception-type`, JSON payload)."""
    try:
        data = msgspec.json.decode(payload) if payload else None
    except (msgspec.DecodeError, UnicodeDecodeError):
        data = None
    message = data.get("message") or data.get("Message") if isinstance(data, dict) else None
    known = ERRORS.get((name or "").lower())
    status = known[0] if known else 500
    text = message if isinstance(message, str) and message else "upstream reported an error"
    return classify(name, text, status, None)


def classify(name: str | None, message: str, status: int, wait: float | None) -> UpstreamError:
    known = ERRORS.get((name or "").lower())
    kind = known[1] if known else kind_of_status(status)
    code = None
    if kind is K.INVALID_REQUEST and looks_like_context_overflow(message):
        kind = K.CONTEXT_LENGTH  # "Input is too long for requested model."
    elif kind is K.INVALID_REQUEST and content_filtered(message):
        kind, code = K.CONTENT_POLICY, "content_policy_violation"
    return UpstreamError(
        kind,
        redact_secrets(message[:2000]),
        status=status,
        code=code,
        retry_after=wait,
    )


def content_filtered(message: str) -> bool:
    """Image models' refusals: a ValidationException "...blocked by our content filters"."""
    return "content filter" in message.lower()
