"""Error types and codes: every failure a client sees is one of these.

Clients always receive OpenAI's error shape: {"error": {"message", "type", "param", "code"}}.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class ErrorType(StrEnum):
    """The `type` field of an error body; the OpenAI SDKs key nothing on it but people read it."""

    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    PERMISSION = "permission_error"
    NOT_FOUND = "not_found_error"
    RATE_LIMIT = "rate_limit_error"
    INSUFFICIENT_QUOTA = "insufficient_quota"  # a budget or prepaid credits are used up
    UPSTREAM = "upstream_error"
    TIMEOUT = "timeout_error"
    UNAVAILABLE = "service_unavailable_error"
    SERVER = "server_error"


class ErrorCode(StrEnum):
    """Stable machine-readable codes (the `code` field)."""

    INVALID_JSON = "invalid_json"
    INVALID_PARAMETER = "invalid_parameter"
    UNKNOWN_PARAMETER = "unknown_parameter"
    MISSING_PARAMETER = "missing_required_parameter"
    UNSUPPORTED_PARAMETER = "unsupported_parameter"
    REQUEST_TOO_LARGE = "request_too_large"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    CONTENT_POLICY = "content_policy_violation"
    GUARDRAIL_BLOCKED = "guardrail_blocked"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    MISSING_API_KEY = "missing_api_key"
    INVALID_API_KEY = "invalid_api_key"
    API_KEY_REVOKED = "api_key_revoked"
    API_KEY_EXPIRED = "api_key_expired"
    API_KEY_ROTATED = "api_key_rotated"
    KEY_OWNER_DISABLED = "key_owner_disabled"  # its owner was disabled or left the workspace
    IP_NOT_ALLOWED = "ip_not_allowed"
    REFERER_NOT_ALLOWED = "referer_not_allowed"
    TOO_MANY_INVALID_KEYS = "too_many_invalid_keys"  # an address guessing keys, throttled
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"  # a CORS preflight from an unknown origin
    MODEL_NOT_ALLOWED = "model_not_allowed"
    TEST_KEY_NOT_ALLOWED = "test_key_not_allowed"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    MODEL_NOT_FOUND = "model_not_found"
    ENDPOINT_NOT_SUPPORTED = "endpoint_not_supported"  # the model is for other work
    ROUTE_NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    LOOP_DETECTED = "loop_detected"
    RATE_LIMITED = "rate_limit_exceeded"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_AUTH = "upstream_authentication_failed"
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_BAD_RESPONSE = "upstream_bad_response"
    UPSTREAM_RESPONSE_TOO_LARGE = "upstream_response_too_large"
    NO_DEPLOYMENT = "no_deployment_available"
    DEPLOYMENT_CAPACITY = "deployment_capacity_exceeded"
    INTERNAL = "internal_error"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    # Gateway limits, budgets and credits (see docs/limits.md).
    RATE_LIMIT_REQUESTS = "rate_limit_requests"
    RATE_LIMIT_TOKENS = "rate_limit_tokens"
    QUOTA_DAILY_TOKENS = "quota_daily_tokens"
    QUOTA_MONTHLY_TOKENS = "quota_monthly_tokens"
    CONCURRENCY_LIMIT = "concurrency_limit"
    BUDGET_EXCEEDED = "budget_exceeded"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    LIMITS_UNAVAILABLE = "limits_unavailable"
    STORE_UNAVAILABLE = "store_unavailable"  # a key not in memory while the database is down


class GatewayError(Exception):
    """A failure with the HTTP status and body the client should see."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: ErrorType,
        code: ErrorCode | str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return msgspec.json.encode(
            {
                "error": {
                    "message": self.message,
                    "type": str(self.type),
                    "param": self.param,
                    "code": None if self.code is None else str(self.code),
                }
            }
        )

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.code}, {self.message!r})"


def bad_request(
    message: str, *, param: str | None = None, code: ErrorCode = ErrorCode.INVALID_PARAMETER
) -> GatewayError:
    return GatewayError(400, message, type=ErrorType.INVALID_REQUEST, code=code, param=param)


def unauthorized(message: str, code: ErrorCode = ErrorCode.INVALID_API_KEY) -> GatewayError:
    return GatewayError(401, message, type=ErrorType.AUTHENTICATION, code=code)


def forbidden(message: str, code: ErrorCode | str) -> GatewayError:
    return GatewayError(403, message, type=ErrorType.PERMISSION, code=code)


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        type=ErrorType.INVALID_REQUEST,
        code=ErrorCode.MODEL_NOT_FOUND,
        param="model",
    )


class UpstreamErrorKind(StrEnum):
    """What went wrong upstream, in provider-independent terms; routing decides on these."""

    INVALID_REQUEST = "invalid_request"  # the client's request is wrong: do not retry
    CONTEXT_LENGTH = "context_length"  # prompt too long for this model
    CONTENT_POLICY = "content_policy"  # refused by the provider's safety system
    UNSUPPORTED = "unsupported"  # this deployment cannot serve the request as asked
    AUTH = "auth"  # our provider credential was rejected (401/403)
    NOT_FOUND = "not_found"  # upstream model or deployment missing: config problem
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    SERVER = "server"  # 5xx
    TIMEOUT = "timeout"
    CONNECT = "connect"  # could not connect, or connection reset
    BAD_RESPONSE = "bad_response"  # upstream answered with something unreadable
    TOO_LARGE = "response_too_large"  # upstream sent more than the deployment's caps allow
    NOT_CONFIGURED = "not_configured"  # the deployment lacks what a call needs (an API key)


class UpstreamError(Exception):
    """A failed upstream attempt. `message` is safe to show the client when the kind is theirs."""

    def __init__(
        self,
        kind: UpstreamErrorKind,
        message: str,
        *,
        status: int | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.retry_after = retry_after
        # Set by the router when the attempt fails: who failed, at which host:port (the
        # client's error names them), and a cause the gateway phrased itself.
        self.provider: str | None = None
        self.endpoint: str | None = None
        self.cause: str | None = None

    def __repr__(self) -> str:
        return f"UpstreamError({self.kind}, status={self.status}, {self.message!r})"
