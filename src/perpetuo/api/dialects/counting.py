"""Counting a request's input tokens for clients that ask before sending
(`/v1/messages/count_tokens`, `/v1/responses/input_tokens`): exact from a deployment whose
provider speaks the client's format and counts itself, else the caller estimates (and says
so in the `x-perpetuo-token-count` header)."""

from __future__ import annotations

from typing import Any

from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.providers.base import NativeRequest, decode_object
from perpetuo.schema import headers as H
from perpetuo.schema.errors import UpstreamError, bad_request
from perpetuo.transport.errors import TransportError
from perpetuo.transport.url import Timeouts

COUNT_TIMEOUTS = Timeouts(connect=5, first_byte=20, read=20, total=30)
EXACT = (H.COUNT_KIND.encode(), b"exact")
ESTIMATE = (H.COUNT_KIND.encode(), b"estimate")


async def count_input_tokens(
    gw: Gateway, ctx: RequestContext, native: NativeRequest, operation: str
) -> int | None:
    """The count from the first deployment of the requested alias that speaks the native
    format and answers `operation` (a path under its native endpoint); None otherwise."""
    principal = ctx.principal
    assert principal is not None
    gw.require_scope(principal, "chat")
    ctx.workspace = await gw.workspace(principal)
    alias = gw.resolve_alias(ctx.workspace, principal, str(native.body.get("model")))
    ctx.alias = alias.name
    for dep in alias.deployments:
        if dep.adapter.speaks(native.format):
            counted = await _count_upstream(gw, dep, native, operation)
            if counted is not None:
                return counted
    return None


async def _count_upstream(
    gw: Gateway, dep: Any, native: NativeRequest, operation: str
) -> int | None:
    """The deployment's own count; None when it cannot give one (then we estimate)."""
    call = dep.adapter.native_call(native, native.body, dep.target, None)
    url = call.url.join(operation)
    try:
        response = await gw.client.request(
            "POST",
            url,
            call.headers,
            call.body,
            COUNT_TIMEOUTS,
            verify_tls=dep.target.verify_tls,
            egress=dep.target.egress,
            connection=dep.target.connection,
        )
        data = await response.read()
    except TransportError:
        return None
    if response.status >= 300:
        error = dep.adapter.error(response.status, response.headers, data)
        if error.status in (400, 413, 422):  # the client's mistake: say so
            raise bad_request(error.message)
        return None
    try:
        counted = decode_object(data)
    except UpstreamError:
        return None
    tokens = counted.get("input_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        return None
    return tokens
