"""The dashboard application, mounted by the gateway at /ui (built on first use)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from perpetuo.api.http import Receive, Scope, Send
from perpetuo.pipeline.runtime import Gateway
from perpetuo.schema.errors import GatewayError
from perpetuo.store.pagination import BadCursor
from perpetuo.ui.pages import (
    account,
    alerts,
    audit,
    auth,
    billing,
    chat_sessions,
    keys,
    limits,
    logs,
    members,
    models,
    overview,
    playground,
    providers,
    public,
    referrals,
    settings,
    sso,
    sso_settings,
    teams,
    usage,
)
from perpetuo.ui.render import build_environment, render
from perpetuo.ui.security import SECURITY_HEADERS, csrf_key
from perpetuo.ui.session import SignInRequired, find_visitor
from perpetuo.ui.static_files import StaticFiles, load_assets

ROUTERS = [
    auth.router,
    account.router,
    overview.router,
    members.router,
    teams.router,
    providers.router,
    models.router,
    keys.router,
    playground.router,
    logs.router,
    chat_sessions.router,
    usage.router,
    limits.router,
    alerts.router,
    billing.router,
    referrals.router,
    audit.router,
    settings.router,
    sso.router,
    sso_settings.router,
    public.router,
]


class DashboardApp:
    """Adds the security headers to every response (pages, files, errors, streams);
    pages are never cached, files say how long they may be."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_ui_app(gateway: Gateway) -> DashboardApp:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway
    app.state.plane = gateway.plane
    app.state.templates = build_environment()
    app.state.static = StaticFiles(load_assets())
    app.state.csrf_key = csrf_key(gateway.plane.keys.jwt_signing)
    app.add_api_route("/ui/static/{name}", app.state.static.serve, methods=["GET"])
    for router in ROUTERS:
        app.include_router(router)
    _install_error_handlers(app)
    return DashboardApp(app)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": {"message": message, "code": status}}, status_code=status)
    visitor = await find_visitor(request)
    return render(request, "error.html", status, title=title, message=message, visitor=visitor)


TITLES = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Check the form",
    429: "Slow down",
}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, _: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":  # come back to the page the form was on
            target = urlsplit(request.headers.get("referer") or "/ui").path
        return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> Response:
        title = TITLES.get(exc.status, "Something went wrong")
        return await _error_page(request, exc.status, title, exc.message)

    @app.exception_handler(BadCursor)
    async def bad_cursor(request: Request, _: BadCursor) -> Response:
        return await _error_page(request, 422, TITLES[422], "This page link is not valid.")

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        message = f"{where}: {first.get('msg', 'invalid value')}" if where else "Invalid request."
        return await _error_page(request, 422, "Invalid address", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return await _error_page(request, exc.status_code, TITLES.get(exc.status_code, ""), message)
