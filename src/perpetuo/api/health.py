"""Liveness and readiness probes."""

from __future__ import annotations

from perpetuo.api.http import Request, Response, json_response
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway


async def live(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    return json_response({"status": "ok"})


async def ready(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    aliases = {alias.name: len(alias.deployments) for alias in gw.table.aliases.values()}
    return json_response({"status": "ready", "checks": {"routing": {"aliases": aliases}}})
