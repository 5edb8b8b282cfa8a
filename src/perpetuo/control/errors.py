"""Control-plane failures, rendered by the admin API in the same error shape as the data plane."""

from __future__ import annotations

from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError


def not_found(what: str) -> GatewayError:
    return GatewayError(404, f"{what} not found.", type=ErrorType.NOT_FOUND, code="not_found")


def forbidden(message: str = "You do not have permission to do this.") -> GatewayError:
    return GatewayError(403, message, type=ErrorType.PERMISSION, code="forbidden")


def unauthorized(message: str, code: str = "unauthorized") -> GatewayError:
    return GatewayError(401, message, type=ErrorType.AUTHENTICATION, code=code)


def conflict(message: str, field: str | None = None) -> GatewayError:
    return GatewayError(409, message, type=ErrorType.INVALID_REQUEST, code="conflict", param=field)


def invalid(message: str, field: str | None = None) -> GatewayError:
    return GatewayError(
        422, message, type=ErrorType.INVALID_REQUEST, code=ErrorCode.INVALID_PARAMETER, param=field
    )


def too_many(message: str, retry_after: float) -> GatewayError:
    return GatewayError(
        429,
        message,
        type=ErrorType.RATE_LIMIT,
        code=ErrorCode.RATE_LIMITED,
        headers={"retry-after": str(max(1, round(retry_after)))},
    )


def unavailable(message: str, code: str) -> GatewayError:
    return GatewayError(503, message, type=ErrorType.UNAVAILABLE, code=code)
