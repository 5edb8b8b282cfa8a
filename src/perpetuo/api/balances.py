"""GET /v1/key and GET /v1/credits: balances for whoever holds the key, no admin rights."""

from __future__ import annotations

from perpetuo.api.http import Request, Response, json_response
from perpetuo.control.balances import describe_credits, describe_key
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway


async def key_info(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    ctx.endpoint = "key"
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    return json_response({"data": await describe_key(gw.plane.db, gw.limits, ctx.principal)})


async def credits(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    ctx.endpoint = "credits"
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    state = await gw.workspace(ctx.principal)
    workspace_id = ctx.principal.workspace_id
    assert workspace_id is not None  # every key and the master key have one
    data = await describe_credits(gw.plane.db, gw.limits, workspace_id, state.limits)
    return json_response({"data": data})
