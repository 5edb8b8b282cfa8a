"""Which upstream failures another deployment might fix, and what the client is told."""

from __future__ import annotations

from perpetuo.schema.errors import (
    ErrorCode,
    ErrorType,
    GatewayError,
    UpstreamError,
    UpstreamErrorKind,
)
from perpetuo.transport.errors import (
    ConnectError,
    ConnectionClosed,
    TransportError,
    UpstreamTimeout,
)

K = UpstreamErrorKind

# The client's own request is at fault: another deployment would fail the same way.
_FATAL = frozenset({K.INVALID_REQUEST, K.CONTEXT_LENGTH, K.CONTENT_POLICY})


def is_retryable(error: UpstreamError) -> bool:
    return error.kind not in _FATAL


def from_transport(exc: TransportError) -> UpstreamError:
    if isinstance(exc, UpstreamTimeout):
        return UpstreamError(K.TIMEOUT, str(exc))
    if isinstance(exc, ConnectError | ConnectionClosed):
        return UpstreamError(K.CONNECT, str(exc))
    return UpstreamError(K.BAD_RESPONSE, str(exc))


def to_client_error(error: UpstreamError, *, expose_message: bool = True) -> GatewayError:
    """The error the client sees once no deployment could serve the request."""
    kind = error.kind
    if kind in _FATAL or kind is K.UNSUPPORTED:
        code = {
            K.CONTEXT_LENGTH: ErrorCode.CONTEXT_LENGTH_EXCEEDED,
            K.CONTENT_POLICY: ErrorCode.CONTENT_POLICY,
            K.UNSUPPORTED: ErrorCode.UNSUPPORTED_PARAMETER,
        }.get(kind, error.code or ErrorCode.INVALID_PARAMETER)
        status = error.status if error.status in (400, 404, 413, 422) else 400
        if status == 404:
            status = 400  # the alias exists; an upstream 404 here is about the request
        message = error.message if expose_message else "The upstream provider rejected the request."
        return GatewayError(
            status, message, type=ErrorType.INVALID_REQUEST, code=code, param=error.param
        )
    if kind is K.RATE_LIMIT:
        wait = error.retry_after if error.retry_after is not None else 1.0
        return GatewayError(
            429,
            "All deployments for this model are rate limited upstream; retry later.",
            type=ErrorType.RATE_LIMIT,
            code=ErrorCode.UPSTREAM_RATE_LIMITED,
            headers={"retry-after": str(max(1, round(wait)))},
        )
    if kind is K.TIMEOUT:
        return GatewayError(
            504,
            "The upstream provider did not answer in time.",
            type=ErrorType.TIMEOUT,
            code=ErrorCode.UPSTREAM_TIMEOUT,
        )
    if kind in (K.CONNECT, K.OVERLOADED):
        return GatewayError(
            503,
            "The upstream provider is unavailable or overloaded.",
            type=ErrorType.UNAVAILABLE,
            code=ErrorCode.UPSTREAM_UNAVAILABLE,
        )
    if kind is K.AUTH:
        return GatewayError(
            502,
            "The upstream provider rejected the gateway's credentials for this model.",
            type=ErrorType.UPSTREAM,
            code=ErrorCode.UPSTREAM_AUTH,
        )
    if kind is K.BAD_RESPONSE:
        return GatewayError(
            502,
            "The upstream provider sent a response the gateway could not read.",
            type=ErrorType.UPSTREAM,
            code=ErrorCode.UPSTREAM_BAD_RESPONSE,
        )
    return GatewayError(
        502,
        "The upstream provider failed to serve the request.",
        type=ErrorType.UPSTREAM,
        code=ErrorCode.UPSTREAM_ERROR,
    )
