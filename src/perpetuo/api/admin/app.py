"""The admin API application (FastAPI), mounted by the gateway under /api, /docs, /openapi.json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from perpetuo import __version__
from perpetuo.api.admin.routes import (
    audit,
    auth,
    cache,
    credentials,
    credits,
    guardrails,
    invites,
    keys,
    members,
    models,
    operations,
    usage,
    users,
    workspaces,
)
from perpetuo.pipeline.runtime import Gateway
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError
from perpetuo.store.pagination import BadCursor

ROUTERS = [
    auth.router,
    workspaces.router,
    members.router,
    invites.router,
    keys.router,
    credentials.router,
    credits.router,
    cache.router,
    guardrails.router,
    models.router,
    audit.router,
    operations.router,
    usage.router,
    users.router,
]


def create_admin_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title="Perpetuo admin API",
        version=__version__,
        description="Accounts, workspaces, members, API keys, provider credentials, "
        "workspace models, prepaid credits and the audit log. Authenticate with "
        "`Authorization: Bearer <access token>` (from /api/auth/login) or the master key.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.plane = gateway.plane
    app.state.master_key = gateway.master_key.encode() if gateway.master_key else None
    app.state.http = gateway.client
    app.state.workspace_routes = gateway.workspace_routes
    app.state.gateway = gateway
    for router in ROUTERS:
        app.include_router(router)
    _install_error_handlers(app)
    return app


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


def _install_error_handlers(app: FastAPI) -> None:
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


def _not_json() -> GatewayError:
    return GatewayError(
        422,
        "The request body is not valid JSON.",
        type=ErrorType.INVALID_REQUEST,
        code=ErrorCode.INVALID_JSON,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)
