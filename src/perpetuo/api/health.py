"""Liveness and readiness probes."""

from __future__ import annotations

import hmac

from perpetuo.api.http import Request, Response, json_response
from perpetuo.auth.authenticator import bearer_token
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError, unauthorized
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway


async def live(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    return json_response({"status": "ok"})


async def ready(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """200 while every alias has a deployment whose circuit is not open; 503 otherwise.
    The detail names each deployment's breaker state, latency, error rate and in-flight."""
    aliases = {alias.name: len(alias.deployments) for alias in gw.table.aliases.values()}
    ok, detail = gw.router.health_report()
    routing = {"aliases": aliases, **detail}
    return json_response(
        {"status": "ready" if ok else "unavailable", "checks": {"routing": routing}},
        status=200 if ok else 503,
    )


async def metrics(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """Prometheus exposition; behind a bearer token when PERPETUO_METRICS_TOKEN is set."""
    if gw.metrics is None:
        raise GatewayError(404, "Metrics are disabled on this server.", type=ErrorType.NOT_FOUND,
                           code=ErrorCode.ROUTE_NOT_FOUND)
    expected = gw.metrics_token
    if expected is not None:
        token = bearer_token(request.headers) or ""
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise unauthorized("Metrics need the metrics token.", ErrorCode.INVALID_API_KEY)
    body, content_type = gw.metrics.render()
    return Response(200, body, [(b"content-type", content_type.encode())])
