"""Liveness and readiness probes, and the metrics scrape.

Probes answer anyone with a status only (a browser at the base URL is sent to the landing
page, when there is one). The readiness detail (every alias, deployment and
breaker state, store and Redis latencies) is for operators: it needs the master key, the
metrics token or a platform administrator's access token as a bearer token.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from perpetuo.api.http import Request, Response, json_response
from perpetuo.auth.authenticator import bearer_token
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError, unauthorized


async def live(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """GET /health and /health/live: the process serves requests. A browser opening the
    base URL goes to the landing page instead, when the operator publishes one."""
    if (
        request.path == "/"
        and gw.config.public.landing
        and "text/html" in request.headers.get("accept", "")
    ):
        return Response(302, b"", [(b"location", b"/ui/home")])
    return json_response({"status": "ok"})


async def ready(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """200 when the store answers, Redis answers (if configured), every alias has a
    deployment whose circuit is not open and the request log has room (its spill is below
    its cap); 503 otherwise. A lagging request log shows as degraded without failing. For
    operators each check reports its state and latency; the routing detail names each
    deployment's breaker state, latency, error rate and in-flight count."""
    changes = gw.plane.changes
    store = await _timed(gw.plane.db.ping)
    redis = await _timed(changes.ping_redis) if changes.redis_url else {"configured": False}
    routing_ok, detail = gw.router.health_report()
    aliases = {alias.name: len(alias.deployments) for alias in gw.table.aliases.values()}
    checks = {
        "store": store,
        "redis": redis,
        "routing": {"ok": routing_ok, "aliases": aliases, **detail},
        "request_log": gw.usage.health(),
    }
    ok = all(check.get("ok", True) for check in checks.values())
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready"}
    if await _operator(gw, request):
        body["checks"] = checks
    return json_response(body, status=200 if ok else 503)


async def _operator(gw: Gateway, request: Request) -> bool:
    """Whether the caller may see the readiness detail (never an error: probes carry no
    credentials and must keep getting their status)."""
    token = bearer_token(request.headers)
    if not token:
        return False
    for secret in (gw.master_key, gw.metrics_token):
        if secret and hmac.compare_digest(token.encode(), secret.encode()):
            return True
    if token.count(".") != 2:  # not shaped like an access token (a JWT)
        return False
    from perpetuo.control.sessions import is_platform_admin  # JWT support: loaded on use

    return await is_platform_admin(gw.plane, token)


async def _timed(probe: Callable[[], Awaitable[float | None]]) -> dict[str, Any]:
    try:
        async with asyncio.timeout(2.0):
            seconds = await probe()
    except Exception as exc:  # unreachable, refused, timed out: all mean not ready
        return {"ok": False, "latency_ms": None, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": None if seconds is None else round(seconds * 1000, 2)}


async def metrics(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """Prometheus exposition; behind a bearer token when PERPETUO_METRICS_TOKEN is set."""
    if gw.metrics is None:
        raise GatewayError(
            404,
            "Metrics are disabled on this server.",
            type=ErrorType.NOT_FOUND,
            code=ErrorCode.ROUTE_NOT_FOUND,
        )
    expected = gw.metrics_token
    if expected is not None:
        token = bearer_token(request.headers) or ""
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise unauthorized("Metrics need the metrics token.", ErrorCode.INVALID_API_KEY)
    body, content_type = gw.metrics.render()
    return Response(200, body, [(b"content-type", content_type.encode())])
