"""Anthropic's Messages API as an ingress dialect: `POST /v1/messages`, its token counter,
and the model list in Anthropic's shape.

The request goes through the same pipeline as chat (auth, limits, guardrails, cache,
routing, metering, logs). Anthropic deployments get the client's body as it is (the native
lane: thinking signatures, cache_control, betas and fields the gateway does not model all
reach them); others get the translated chat form, and their answers come back in
Anthropic's framing.
"""

from __future__ import annotations

from perpetuo.api.dataplane import (
    cache_directive,
    request_tags,
    response_headers,
    route_override,
)
from perpetuo.api.dialects.anthropic_messages import errors as message_errors
from perpetuo.api.dialects.anthropic_messages import request as message_request
from perpetuo.api.dialects.anthropic_messages import response as message_response
from perpetuo.api.dialects.anthropic_messages.stream import StreamEncoder
from perpetuo.api.dialects.anthropic_messages.tokens import estimate_input_tokens
from perpetuo.api.dialects.base import DialectRequest
from perpetuo.api.dialects.counting import ESTIMATE, EXACT, count_input_tokens
from perpetuo.api.dialects.sse import dialect_events
from perpetuo.api.http import (
    JSON_TYPE,
    SSE_HEADERS,
    Request,
    Response,
    StreamingResponse,
    json_response,
)
from perpetuo.pipeline.chat import ChatReply, chat_completion
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.providers.anthropic import BETA_HEADER, MESSAGES, VERSION_HEADER
from perpetuo.providers.base import NativeRequest
from perpetuo.schema.errors import GatewayError
from perpetuo.transport.url import Timeouts

DIALECT = MESSAGES
COUNT_TIMEOUTS = Timeouts(connect=5, first_byte=20, read=20, total=30)


def render_error(error: GatewayError, request_id: str) -> Response:
    status, body, headers = message_errors.render(error, request_id)
    extra = [(k.encode(), v.encode()) for k, v in headers.items()]
    return Response(status, body, [JSON_TYPE, *extra])


async def _authenticated(gw: Gateway, request: Request, ctx: RequestContext) -> bytes:
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    return await request.body(gw.config.server.max_request_body_bytes)


def _native(decoded: DialectRequest, headers: dict[str, str]) -> NativeRequest:
    names = (VERSION_HEADER, BETA_HEADER)
    forwarded = tuple((name, headers[name]) for name in names if name in headers)
    return NativeRequest(DIALECT, decoded.raw, forwarded, tuple(decoded.native_only))


async def messages(
    gw: Gateway, request: Request, ctx: RequestContext
) -> Response | StreamingResponse:
    ctx.endpoint, ctx.tags = "messages", request_tags(request.headers)
    body = await _authenticated(gw, request, ctx)
    ctx.trace.requested_strategy = route_override(request.headers)
    ctx.cache_directive = cache_directive(request.headers)
    decoded = message_request.decode(body)
    native = _native(decoded, request.headers)
    result = await chat_completion(gw, ctx, decoded.chat, {}, native=native)
    headers = response_headers(ctx, result.deployment)
    model = decoded.raw["model"]
    if isinstance(result, ChatReply):
        if result.raw is not None:  # an Anthropic deployment's answer, as it sent it
            return Response(200, result.raw, [JSON_TYPE, *headers])
        answer = message_response.encode(result.body, ctx.usage, model=model, request=decoded)
        return json_response(answer, headers=headers)
    events = dialect_events(
        result,
        ctx,
        StreamEncoder(model, decoded),
        lambda error: [message_errors.stream_event(error)],
    )
    return StreamingResponse(events, [*SSE_HEADERS, *headers], on_close=result.on_close)


async def count_tokens(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """Exact from an Anthropic deployment of the alias, else an estimate (marked as such)."""
    ctx.endpoint = "count_tokens"
    body = await _authenticated(gw, request, ctx)
    decoded = message_request.decode_count_tokens(body)
    native = _native(decoded, request.headers)
    counted = await count_input_tokens(gw, ctx, native, "count_tokens")
    if counted is not None:
        return json_response({"input_tokens": counted}, headers=[EXACT])
    estimate = {"input_tokens": estimate_input_tokens(decoded)}
    return json_response(estimate, headers=[ESTIMATE])
