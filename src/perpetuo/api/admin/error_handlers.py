"""How the admin API answers failures: always OpenAI's error shape, with the status its
OpenAPI schema documents (see responses.py), whatever raised them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError
from perpetuo.store.pagination import BadCursor
from perpetuo.store.refusals import sqlstate

log = logging.getLogger("perpetuo.api.admin")


def _render(error: GatewayError) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "message": error.message,
                "type": str(error.type),
                "param": error.param,
                "code": None if error.code is None else str(error.code),
            }
        },
        status_code=error.status,
        headers=error.headers or None,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        return _render(exc)

    @app.exception_handler(BadCursor)
    async def bad_cursor(_: Request, exc: BadCursor) -> JSONResponse:
        return _render(
            GatewayError(
                422,
                str(exc),
                type=ErrorType.INVALID_REQUEST,
                code=ErrorCode.INVALID_PARAMETER,
                param="cursor",
            )
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
        field = ".".join(loc[1:] if loc and loc[0] in ("query", "path", "header") else loc)
        message = first.get("msg", "Invalid value")
        if first.get("type") == "json_invalid":
            return _render(_not_json())
        if first.get("type") == "extra_forbidden":
            message = "Unknown field."
        text = f"{field}: {message}" if field else message
        return _render(
            GatewayError(
                422,
                text,
                type=ErrorType.INVALID_REQUEST,
                code=ErrorCode.INVALID_PARAMETER,
                param=field or None,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's bare 400 when a body cannot even be decoded (e.g. not UTF-8): to the
            # client it is the same mistake as malformed JSON, so it gets the same answer.
            return _render(_not_json())
        message, headers = str(exc.detail), dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; several routes
            # (GET and POST of one collection) share a path, and `Allow` must list them all.
            allowed = ", ".join(allowed_methods(request))
            path = request.url.path
            message = f"Method {request.method} is not allowed on {path} (allowed: {allowed})."
            headers["Allow"] = allowed
        code = {404: ErrorCode.ROUTE_NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
            exc.status_code, "http_error"
        )
        kind = ErrorType.NOT_FOUND if exc.status_code == 404 else ErrorType.INVALID_REQUEST
        return _render(
            GatewayError(exc.status_code, message, type=kind, code=code, headers=headers)
        )

    @app.exception_handler(DBAPIError)
    async def value_refused(request: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 is the database refusing a value the request carried (a NUL
        # character, text too long for its column, a number out of range): the client's
        # mistake, not a fault of ours. Anything else is a server error.
        code = sqlstate(exc)
        if not code.startswith("22"):
            raise exc
        # Not the database's message: it may quote the value, and values may be secrets.
        log.info(
            "%s %s: the store refused a value (SQLSTATE %s)",
            request.method,
            request.url.path,
            code,
        )
        return _render(
            GatewayError(
                422,
                "A value in the request cannot be stored or searched for "
                "(for example it contains a NUL character or is too long).",
                type=ErrorType.INVALID_REQUEST,
                code=ErrorCode.INVALID_PARAMETER,
            )
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log (the server re-raises after this answer), never out.
        return _render(
            GatewayError(
                500,
                "The gateway failed unexpectedly; the details are in its log.",
                type=ErrorType.SERVER,
                code=ErrorCode.INTERNAL,
            )
        )


def _not_json() -> GatewayError:
    return GatewayError(
        422,
        "The request body is not valid JSON.",
        type=ErrorType.INVALID_REQUEST,
        code=ErrorCode.INVALID_JSON,
    )


# What a 405 may list: every method some route could serve.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app fully matches at the request's path."""
    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    ]
