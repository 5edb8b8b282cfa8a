"""OpenAI-compatible data-plane routes: decode, hand to the pipeline, render the answer."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

from perpetuo.api.dialects.anthropic_messages import models as anthropic_models
from perpetuo.api.http import (
    SSE_HEADERS,
    Request,
    Response,
    StreamingResponse,
    encode_json,
    json_response,
)
from perpetuo.api.ingress import decode_chat_request, decode_embedding_request
from perpetuo.cache.policy import BadDirective, Directive, parse_directive
from perpetuo.pipeline.cache import CacheRun
from perpetuo.pipeline.chat import ChatReply, chat_completion
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.embeddings import create_embeddings
from perpetuo.pipeline.replay import CachedStream
from perpetuo.pipeline.runtime import Gateway
from perpetuo.pipeline.stream import ChatStream
from perpetuo.routing.strategies import STRATEGY_NAMES
from perpetuo.routing.table import Alias, Deployment
from perpetuo.routing.trace import RoutingTrace
from perpetuo.schema import headers as H
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import bad_request, model_not_found
from perpetuo.transport.sse import DONE

_STARTED_AT = int(time.time())


async def chat_completions(
    gw: Gateway, request: Request, ctx: RequestContext
) -> Response | StreamingResponse:
    ctx.endpoint, ctx.tags = "chat", request_tags(request.headers)
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    ctx.trace.requested_strategy = route_override(request.headers)
    ctx.cache_directive = cache_directive(request.headers)
    body = await request.body(gw.config.server.max_request_body_bytes)
    chat_request, extras = decode_chat_request(body)
    result = await chat_completion(gw, ctx, chat_request, extras)
    headers = response_headers(ctx, result.deployment)
    if isinstance(result, ChatReply):
        return json_response(result.body, headers=headers)
    return StreamingResponse(sse_events(result), [*SSE_HEADERS, *headers], on_close=result.on_close)


async def embeddings(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    ctx.endpoint, ctx.tags = "embeddings", request_tags(request.headers)
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    ctx.trace.requested_strategy = route_override(request.headers)
    body = await request.body(gw.config.server.max_request_body_bytes)
    served = await create_embeddings(gw, ctx, decode_embedding_request(body))
    return json_response(served.body, headers=response_headers(ctx, served.deployment))


async def list_models(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    ctx.endpoint = "models"
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    gw.require_scope(ctx.principal, "models:read")
    state = await gw.workspace(ctx.principal)
    aliases = gw.visible_aliases(state, ctx.principal)
    if anthropic_models.wants_anthropic_shape(request.headers):  # Anthropic's SDK models.list()
        names = [alias.name for alias in aliases]
        return json_response(anthropic_models.models_page(names, _STARTED_AT))
    return json_response({"object": "list", "data": [_model_object(a) for a in aliases]})


async def retrieve_model(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    ctx.endpoint = "models"
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    gw.require_scope(ctx.principal, "models:read")
    name = request.path.split("/models/", 1)[1]
    if not name:
        raise model_not_found(name)
    alias = gw.resolve_alias(await gw.workspace(ctx.principal), ctx.principal, name)
    if anthropic_models.wants_anthropic_shape(request.headers):  # Anthropic's models.retrieve
        return json_response(anthropic_models.model_object(alias.name, _STARTED_AT))
    return json_response(_model_object(alias))


def _model_object(alias: Alias) -> dict[str, object]:
    """OpenAI's model object, plus what the alias serves (SDKs keep unknown fields)."""
    return {
        "id": alias.name,
        "object": "model",
        "created": _STARTED_AT,
        "owned_by": "perpetuo",
        "capabilities": {str(e): e in alias.endpoints for e in Endpoint},
    }


_TAG = re.compile(r"^[A-Za-z0-9_.:/@=-]{1,64}$")


def request_tags(headers: dict[str, str]) -> list[str] | None:
    """Tags for usage analytics from `x-perpetuo-tags: a,b` (at most 10, each a short token);
    anything else is a 400 rather than silently lost data."""
    value = headers.get(H.TAGS)
    if not value:
        return None
    tags = [t.strip() for t in value.split(",") if t.strip()]
    if len(tags) > 10 or not all(_TAG.match(t) for t in tags):
        raise bad_request(
            f"{H.TAGS} takes at most 10 comma-separated tags of letters, digits and _.:/@=- "
            "(64 characters each).",
            param=H.TAGS,
        )
    return tags or None


def route_override(headers: dict[str, str]) -> str | None:
    """The strategy the client asked for in X-Perpetuo-Route; None when it asked for none."""
    value = headers.get(H.ROUTE)
    if value is None:
        return None
    name = value.strip().lower()
    if name not in STRATEGY_NAMES:
        raise bad_request(
            f"Invalid X-Perpetuo-Route value {value!r}: use one of {', '.join(STRATEGY_NAMES)}.",
            param="X-Perpetuo-Route",
        )
    return name


def cache_directive(headers: dict[str, str]) -> Directive | None:
    """Cache-Control (no-cache, no-store) and x-perpetuo-cache-ttl, when the client sent any."""
    control, ttl = headers.get(H.CACHE_CONTROL), headers.get(H.CACHE_TTL)
    if control is None and ttl is None:
        return None
    try:
        return parse_directive(control, ttl)
    except BadDirective as exc:
        raise bad_request(f"{exc}.", param=H.CACHE_TTL) from None


def response_headers(
    ctx: RequestContext, deployment: Deployment | None
) -> list[tuple[bytes, bytes]]:
    """Which deployment served (or the cache), and what the caller has left of its limits."""
    headers = routing_headers(ctx.trace, deployment) if deployment is not None else []
    run = ctx.cache
    if run is not None:
        headers.extend(cache_headers(run))
    if ctx.admission is not None:
        headers.extend((name.encode(), value.encode()) for name, value in ctx.admission.headers)
    return headers


def cache_headers(run: CacheRun) -> list[tuple[bytes, bytes]]:
    headers = [(H.CACHE.encode(), run.result.encode())]
    answer = run.answer
    if answer is not None:  # served from the cache: name who produced the answer first
        headers += [
            (H.PROVIDER.encode(), answer.provider.encode()),
            (H.MODEL.encode(), answer.model.encode()),
            (H.ATTEMPTS.encode(), b"0"),
            (H.FALLBACK.encode(), b"false"),
        ]
    if run.similarity is not None:
        headers.append((H.CACHE_SIMILARITY.encode(), f"{run.similarity:.4f}".encode()))
    return headers


def routing_headers(trace: RoutingTrace, deployment: Deployment) -> list[tuple[bytes, bytes]]:
    return [
        (H.PROVIDER.encode(), deployment.provider.encode()),
        (H.MODEL.encode(), deployment.model.encode()),
        (H.ATTEMPTS.encode(), str(len(trace.attempts)).encode()),
        (H.FALLBACK.encode(), b"true" if trace.fallback_used else b"false"),
    ]


async def sse_events(stream: ChatStream | CachedStream) -> AsyncIterator[bytes]:
    """SSE bytes for the client. After the first event (sent at once, for time to first token),
    events that arrived together upstream are written together: one socket write per burst
    instead of one per token."""
    chunks = stream.chunks()
    pending: list[bytes] = []
    first = True
    try:
        async for chunk in chunks:
            pending.append(b"data: " + encode_json(chunk) + b"\n\n")
            if first or not stream.more_ready():
                first = False
                yield b"".join(pending)
                pending.clear()
    finally:
        await chunks.aclose()
    if not stream.failed:
        pending.append(DONE)
    if pending:
        yield b"".join(pending)
