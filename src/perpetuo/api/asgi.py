"""The ASGI entry point: request ids, dispatch by path, error rendering, lifespan."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from perpetuo.api import (
    balances,
    chat_sessions,
    dataplane,
    health,
    messages,
    operations,
    responses,
)
from perpetuo.api.cors import CorsPolicy
from perpetuo.api.http import (
    ClientGone,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    StreamingResponse,
    TrustedProxies,
    error_response,
)
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.schema import headers as H
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError
from perpetuo.store.ids import new_request_id

log = logging.getLogger("perpetuo.api")

Handler = Callable[[Gateway, Request, RequestContext], Awaitable[Response | StreamingResponse]]

# Exact paths. Clients configured without the /v1 prefix are common, so both are served.
ROUTES: dict[str, dict[str, Handler]] = {}
for prefix in ("/v1", ""):
    ROUTES[f"{prefix}/chat/completions"] = {"POST": dataplane.chat_completions}
    ROUTES[f"{prefix}/chat/sessions"] = {m: chat_sessions.collection for m in ("GET", "POST")}
    ROUTES[f"{prefix}/embeddings"] = {"POST": dataplane.embeddings}
    ROUTES[f"{prefix}/models"] = {"GET": dataplane.list_models}
    ROUTES[f"{prefix}/responses"] = {"POST": responses.create}
    ROUTES[f"{prefix}/responses/input_tokens"] = {"POST": responses.input_tokens}
    ROUTES[f"{prefix}/messages"] = {"POST": messages.messages}
    ROUTES[f"{prefix}/messages/count_tokens"] = {"POST": messages.count_tokens}
    ROUTES[f"{prefix}/key"] = {"GET": balances.key_info}  # OpenRouter's names
    ROUTES[f"{prefix}/credits"] = {"GET": balances.credits}
    for path, handler in operations.ROUTES.items():
        ROUTES[f"{prefix}/{path}"] = {"POST": handler}
ROUTES["/"] = {"GET": health.live, "HEAD": health.live}  # clients probe the base URL at start
ROUTES["/health"] = ROUTES["/health/live"] = {"GET": health.live}
ROUTES["/ping"] = {"GET": health.live, "HEAD": health.live}
ROUTES["/health/ready"] = {"GET": health.ready}
ROUTES["/metrics"] = {"GET": health.metrics}
# Model ids may contain slashes ("meta-llama/Llama-3.1-8B"), so these match by prefix.
STORED_RESPONSE: dict[str, Handler] = {m: responses.stored for m in ("GET", "DELETE", "POST")}
CHAT_SESSION: dict[str, Handler] = {m: chat_sessions.item for m in ("GET", "DELETE", "POST")}
PREFIX_ROUTES: tuple[tuple[str, dict[str, Handler]], ...] = (
    ("/v1/models/", {"GET": dataplane.retrieve_model}),
    ("/models/", {"GET": dataplane.retrieve_model}),
    ("/v1/responses/", STORED_RESPONSE),
    ("/responses/", STORED_RESPONSE),
    ("/v1/chat/sessions/", CHAT_SESSION),
    ("/chat/sessions/", CHAT_SESSION),
)
# Endpoints whose clients expect another error shape than OpenAI's.
ERROR_SHAPES: dict[str, Callable[[GatewayError, str], Response]] = {
    path: messages.render_error
    for prefix in ("/v1", "")
    for path in (f"{prefix}/messages", f"{prefix}/messages/count_tokens")
}

# Probes and scrapes are not requests worth a log line, a span or a metric each.
QUIET_ENDPOINTS = frozenset({"/health", "/health/live", "/health/ready", "/metrics", "/ping"})

# Clients configured with https://host/api/v1 as their base URL (OpenRouter's layout) reach
# the data plane: this prefix is taken off before the admin API's /api/ is considered.
DATA_PLANE_ALIAS = "/api/v1"
# Everything else under these goes to the admin API (a FastAPI app, built on first use).
ADMIN_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json")
# /ui and everything under it go to the web dashboard (also built on first use).
UI_PATH = "/ui"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_for(headers: dict[str, str]) -> str:
    """The client's x-request-id when it is a sane token, else a fresh one."""
    given = headers.get(H.REQUEST_ID)
    if given and _REQUEST_ID.match(given):
        return given
    return new_request_id()


class GatewayApp:
    """The ASGI application. `gateway` is built by the factory and closed at shutdown."""

    def __init__(
        self,
        gateway: Gateway,
        proxies: TrustedProxies | None = None,
        cors: CorsPolicy | None = None,
    ) -> None:
        self.gateway = gateway
        self.proxies = proxies  # None: the peer is the client (in-process tests)
        self.cors = cors  # None: no CORS answers at all
        self._admin: Any = None
        self._ui: Any = None

    def admin_app(self) -> Any:
        if self._admin is None:
            from perpetuo.api.admin.app import create_admin_app  # heavy: imported on demand

            self._admin = create_admin_app(self.gateway)
        return self._admin

    def ui_app(self) -> Any:
        if self._ui is None:
            from perpetuo.ui.app import create_ui_app  # heavy: imported on demand

            self._ui = create_ui_app(self.gateway)
        return self._ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self.proxies is not None:
                self.proxies.apply(scope)  # one client address for every part of the app
            path = scope["path"]
            if path == DATA_PLANE_ALIAS or path.startswith(DATA_PLANE_ALIAS + "/"):
                scope = {**scope, "path": path[4:]}  # /api/v1/chat/completions -> /v1/...
                await self._http(scope, receive, send)
                return
            if path.startswith(ADMIN_PREFIXES):
                await self.admin_app()(scope, receive, send)
                return
            if path == UI_PATH or path.startswith(UI_PATH + "/"):
                await self.ui_app()(scope, receive, send)
                return
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request_id = request_id_for(request.headers)
        extra = [(H.REQUEST_ID.encode(), request_id.encode())]
        cors = self.cors if "origin" in request.headers else None
        if cors is not None and _is_preflight(request):  # before auth: browsers send none
            await (await cors.preflight(request.headers)).send(send, receive, extra)
            return
        shape = ERROR_SHAPES.get(request.path)
        if shape is not None:  # Anthropic's SDKs read the id from Anthropic's header name
            extra.append((b"request-id", request_id.encode()))
        ctx = RequestContext(
            request_id,
            endpoint=request.path,
            client_ip=request.client_ip,
            user_agent=request.headers.get("user-agent", ""),
        )
        gateway = self.gateway
        if request.path not in QUIET_ENDPOINTS:
            gateway.tracing.start(ctx, request.headers)
            if gateway.metrics is not None:
                gateway.metrics.in_flight.inc()
        response: Response | StreamingResponse
        try:
            response = await self._dispatch(request, ctx)
        except GatewayError as exc:
            response = shape(exc, request_id) if shape else error_response(exc)
            ctx.finish(exc.status, str(exc.code) if exc.code else None)
        except ClientGone:
            ctx.finish(499, "client_disconnected")
            self._done(ctx)
            return
        except Exception as exc:
            log.error(
                "unhandled error serving %s %s (request %s): %s",
                request.method,
                request.path,
                request_id,
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            failure = internal_error(request_id)
            response = shape(failure, request_id) if shape else error_response(failure)
            ctx.finish(500, str(ErrorCode.INTERNAL))
        if cors is not None:
            extra += cors.answer_headers(request.headers, await self._origins_of(ctx))
        try:
            await response.send(send, receive, extra)
        finally:
            if ctx.latency_ms is None:  # success (errors were finished above)
                ctx.finish(response.status, ctx.error_code)
            self._done(ctx)

    async def _origins_of(self, ctx: RequestContext) -> frozenset[str] | None:
        """Origins the caller's workspace allows (from memory); before authentication, the
        ones any workspace allows, so a browser app can read why it was refused."""
        assert self.cors is not None
        if ctx.principal is None:
            return self.cors.known_origins
        try:
            state = await self.gateway.workspace(ctx.principal)
        except Exception:  # the workspace could not be read: only the global list applies
            return None
        return frozenset(state.settings.get("cors_origins") or ())

    def _done(self, ctx: RequestContext) -> None:
        if ctx.endpoint in QUIET_ENDPOINTS:
            return
        if self.gateway.metrics is not None:
            self.gateway.metrics.in_flight.dec()
        self.gateway.record(ctx)

    async def _dispatch(
        self, request: Request, ctx: RequestContext
    ) -> Response | StreamingResponse:
        hops = count_hops(request.headers, self.gateway.config.egress.max_hops)
        # Every upstream call says how many gateways the request went through.
        ctx.trace.upstream_headers += ((H.HOPS, str(hops + 1)),)
        methods = ROUTES.get(request.path)
        if methods is None:
            for prefix, candidate in PREFIX_ROUTES:
                if request.path.startswith(prefix):
                    methods = candidate
                    break
            else:
                raise GatewayError(
                    404,
                    f"Unknown route: {request.method} {request.path}",
                    type=ErrorType.NOT_FOUND,
                    code=ErrorCode.ROUTE_NOT_FOUND,
                )
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(methods)
            raise GatewayError(
                405,
                f"Method {request.method} is not allowed on {request.path} (allowed: {allowed}).",
                type=ErrorType.INVALID_REQUEST,
                code=ErrorCode.METHOD_NOT_ALLOWED,
                headers={"allow": allowed},
            )
        return await handler(self.gateway, request, ctx)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: dict[str, Any] = await receive()  # type: ignore[assignment]
            if message["type"] == "lifespan.startup":
                try:
                    await self.gateway.start()
                    _on_sighup(self.gateway)
                except Exception as exc:
                    log.error("start-up failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _is_preflight(request: Request) -> bool:
    return request.method == "OPTIONS" and "access-control-request-method" in request.headers


def count_hops(headers: dict[str, str], limit: int) -> int:
    """Gateways this request already passed through; 508 when that reaches `limit` (a
    provider pointing back at a gateway would otherwise recurse without end)."""
    value = headers.get(H.HOPS)
    if value is None:
        return 0
    try:
        hops = max(0, int(value))
    except ValueError:
        hops = limit  # a mangled count is treated as a loop, not as a fresh request
    if hops >= limit:
        raise GatewayError(
            508,
            f"Request loop detected: this request already passed through {limit} or more "
            "gateways. A provider endpoint probably points back at a gateway.",
            type=ErrorType.INVALID_REQUEST,
            code=ErrorCode.LOOP_DETECTED,
        )
    return hops


def internal_error(request_id: str) -> GatewayError:
    return GatewayError(
        500,
        f"The gateway failed unexpectedly. Quote request id {request_id} when reporting it.",
        type=ErrorType.SERVER,
        code=ErrorCode.INTERNAL,
    )


def _on_sighup(gateway: Gateway) -> None:
    """SIGHUP reloads the configuration (where this process may install signal handlers)."""
    import asyncio
    import signal

    def reload() -> None:
        async def run() -> None:
            try:
                log.info(await gateway.reload_everywhere())
            except Exception as exc:
                log.error("configuration reload refused, keeping the running one: %s", exc)

        asyncio.get_running_loop().create_task(run())

    # Not possible off the main thread or without signals (e.g. in-process tests): skip.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
