"""Liveness and readiness probes."""

from __future__ import annotations

from perpetuo.api.http import Request, Response, json_response
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
