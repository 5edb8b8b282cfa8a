"""Which upstream failures another deployment might fix, which say something about the
deployment's health, and what the client is told.

| kind | another deployment? | same one again? | counts against health |
|---|---|---|---|
| invalid_request, context_length, content_policy | no (but see fallbacks.py) | no | no |
| unsupported (this deployment cannot serve the request as asked) | yes | no | no |
| not_configured (no API key: nothing to call with) | yes | no | no |
| auth (our provider credential rejected) | yes | no | opens the breaker at once |
| not_found (upstream model missing) | yes | no | yes |
| rate_limit, overloaded, server, timeout, connect, bad_response | yes | yes | yes |
| response_too_large (past the deployment's caps) | yes | no | yes |
"""

from __future__ import annotations

import math

from perpetuo.schema.errors import (
    ErrorCode,
    ErrorType,
    GatewayError,
    UpstreamError,
    UpstreamErrorKind,
)
from perpetuo.transport.egress import EgressRefused
from perpetuo.transport.errors import (
    ConnectError,
    ConnectionClosed,
    ResponseTooLarge,
    TransportError,
    UpstreamTimeout,
)

K = UpstreamErrorKind

# The client's own request is at fault: another deployment would fail the same way.
_FATAL = frozenset({K.INVALID_REQUEST, K.CONTEXT_LENGTH, K.CONTENT_POLICY})
# Failures that say nothing about the deployment's health.
_NOT_HEALTH = _FATAL | {K.UNSUPPORTED, K.NOT_CONFIGURED}
# Passing conditions: the same deployment may serve a moment later.
_TRANSIENT = frozenset({K.RATE_LIMIT, K.OVERLOADED, K.SERVER, K.TIMEOUT, K.CONNECT, K.BAD_RESPONSE})


def is_retryable(error: UpstreamError) -> bool:
    """May another deployment serve the request?"""
    return error.kind not in _FATAL


def is_transient(error: UpstreamError) -> bool:
    """May the same deployment serve it if asked again after a pause?"""
    return error.kind in _TRANSIENT


def counts_against_health(kind: UpstreamErrorKind) -> bool:
    return kind not in _NOT_HEALTH


class CapacityExhausted(UpstreamError):
    """Every deployment of an alias is at its configured rpm/tpm/max_parallel cap."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(K.RATE_LIMIT, "deployment capacity exhausted", retry_after=retry_after)


class CircuitOpen(UpstreamError):
    """Every deployment of an alias has an open circuit breaker."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            K.OVERLOADED, "every deployment's circuit is open", retry_after=retry_after
        )


def not_configured(problem: str) -> UpstreamError:
    """A deployment that cannot be called as configured (another one may serve)."""
    error = UpstreamError(K.NOT_CONFIGURED, problem)
    error.cause = problem
    return error


def from_transport(exc: TransportError) -> UpstreamError:
    if isinstance(exc, UpstreamTimeout):
        error = UpstreamError(K.TIMEOUT, str(exc))
        error.cause = f"did not answer in time ({exc.phase} timeout)"
        return error
    if isinstance(exc, EgressRefused):
        error = UpstreamError(K.CONNECT, str(exc))
        error.cause = "the gateway's egress policy does not allow connecting to {endpoint}"
        return error
    if isinstance(exc, ConnectError):
        error = UpstreamError(K.CONNECT, str(exc))
        error.cause = "could not connect to {endpoint}"
        return error
    if isinstance(exc, ConnectionClosed):
        error = UpstreamError(K.CONNECT, str(exc))
        when = "before answering" if exc.before_response else "in the middle of its answer"
        error.cause = "{endpoint} closed the connection " + when
        return error
    if isinstance(exc, ResponseTooLarge):
        error = UpstreamError(K.TOO_LARGE, str(exc))
        error.cause = (
            f"{{endpoint}} sent more than the gateway accepts ({exc.what} over {exc.limit} bytes)"
        )
        return error
    return UpstreamError(K.BAD_RESPONSE, str(exc))


def to_client_error(error: UpstreamError, *, expose_message: bool = True) -> GatewayError:
    """The error the client sees once no deployment could serve the request. Upstream
    failures name the provider and what went wrong (in the gateway's words: never upstream
    text, addresses resolved by the gateway, or secrets)."""
    if isinstance(error, CapacityExhausted | CircuitOpen):
        return _local_refusal(error)
    failure = _upstream_failure(error)
    if failure is not None:
        return failure
    return _client_fault(error, expose_message)


def described(error: UpstreamError, fallback: str) -> str:
    """`provider: cause.` when the router knows who failed, else the cause as a sentence."""
    cause = error.cause
    if cause is None:
        cause = f"{fallback} (HTTP {error.status})" if error.status is not None else fallback
    cause = cause.format(endpoint=error.endpoint or "the provider")
    if error.provider:
        return f"{error.provider}: {cause}."
    return cause[0].upper() + cause[1:] + "."


def _client_fault(error: UpstreamError, expose_message: bool) -> GatewayError:
    kind = error.kind
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


def _upstream_failure(error: UpstreamError) -> GatewayError | None:
    """Failures of the provider, not of the client's request; None for the latter."""
    kind = error.kind
    if kind in _FATAL or kind is K.UNSUPPORTED:
        return None
    if kind is K.RATE_LIMIT:
        wait = error.retry_after if error.retry_after is not None else 1.0
        return GatewayError(
            429,
            "All deployments for this model are rate limited upstream; retry later.",
            type=ErrorType.RATE_LIMIT,
            code=ErrorCode.UPSTREAM_RATE_LIMITED,
            headers={"retry-after": str(max(1, round(wait)))},
        )
    if kind is K.NOT_CONFIGURED:
        return GatewayError(
            503,
            described(error, "the provider is not configured"),
            type=ErrorType.UNAVAILABLE,
            code=ErrorCode.PROVIDER_NOT_CONFIGURED,
        )
    if kind is K.TIMEOUT:
        return GatewayError(
            504,
            described(error, "the upstream provider did not answer in time"),
            type=ErrorType.TIMEOUT,
            code=ErrorCode.UPSTREAM_TIMEOUT,
        )
    if kind in (K.CONNECT, K.OVERLOADED):
        return GatewayError(
            503,
            described(error, "the upstream provider is unavailable or overloaded"),
            type=ErrorType.UNAVAILABLE,
            code=ErrorCode.UPSTREAM_UNAVAILABLE,
        )
    if kind is K.AUTH:
        return GatewayError(
            502,
            described(error, "the upstream provider rejected the gateway's credentials"),
            type=ErrorType.UPSTREAM,
            code=ErrorCode.UPSTREAM_AUTH,
        )
    if kind is K.TOO_LARGE:
        return GatewayError(
            502,
            described(error, "the upstream provider sent more than the gateway accepts"),
            type=ErrorType.UPSTREAM,
            code=ErrorCode.UPSTREAM_RESPONSE_TOO_LARGE,
        )
    if kind is K.BAD_RESPONSE:
        return GatewayError(
            502,
            described(error, "the upstream provider sent a response the gateway could not read"),
            type=ErrorType.UPSTREAM,
            code=ErrorCode.UPSTREAM_BAD_RESPONSE,
        )
    return GatewayError(
        502,
        described(error, "the upstream provider failed to serve the request"),
        type=ErrorType.UPSTREAM,
        code=ErrorCode.UPSTREAM_ERROR,
    )


def _local_refusal(error: CapacityExhausted | CircuitOpen) -> GatewayError:
    """The gateway itself declined to call upstream: say when to come back."""
    wait = {"retry-after": str(max(1, math.ceil(error.retry_after or 1.0)))}
    if isinstance(error, CapacityExhausted):
        return GatewayError(
            429,
            "Every deployment for this model is at its configured capacity; retry later.",
            type=ErrorType.RATE_LIMIT,
            code=ErrorCode.DEPLOYMENT_CAPACITY,
            headers=wait,
        )
    return GatewayError(
        503,
        "Every deployment for this model is failing and temporarily taken out of rotation.",
        type=ErrorType.UNAVAILABLE,
        code=ErrorCode.NO_DEPLOYMENT,
        headers=wait,
    )
