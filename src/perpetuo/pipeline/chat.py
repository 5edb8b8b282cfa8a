"""Chat completions, stage by stage. Read this function to know what a request goes through."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from perpetuo.metering.recorder import cost_micros
from perpetuo.metering.tokens import completion_text, estimate_usage
from perpetuo.pipeline import bodies, cache, guardrails, limits
from perpetuo.pipeline.cache import NO_CACHE
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.replay import CachedStream, served_body
from perpetuo.pipeline.runtime import Gateway
from perpetuo.pipeline.shaping import OutputShaper
from perpetuo.pipeline.stream import ChatStream
from perpetuo.providers.base import NativeRequest
from perpetuo.routing.table import Alias, Deployment
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import ErrorCode, bad_request
from perpetuo.schema.usage import Usage


@dataclass(slots=True)
class ChatReply:
    body: dict[str, Any]  # chat form
    deployment: Deployment | None  # None: served from the cache
    raw: bytes | None = None  # the provider's own answer, on the native lane


@bodies.logged  # keeps the request and response bodies when the workspace asks for it
async def chat_completion(
    gw: Gateway,
    ctx: RequestContext,
    request: ChatCompletionRequest,
    extras: dict[str, Any],
    native: NativeRequest | None = None,
) -> ChatReply | ChatStream | CachedStream:
    """An authenticated request in; an OpenAI-format completion, or a stream of chunks, out.
    `native`: the client's own body when it wrote a provider format (Messages, Responses):
    deployments of that format get it as it is, unless guardrails rewrite the exchange."""
    principal = ctx.principal
    assert principal is not None, "authenticated at ingress"
    gw.require_scope(principal, "chat")
    ctx.workspace = await gw.workspace(principal)
    alias = gw.resolve_alias(ctx.workspace, principal, request.model)
    ctx.alias, ctx.stream = alias.name, request.is_stream
    gw.require_endpoint(alias, Endpoint.CHAT)
    request = request.with_output_limit(alias.max_output_tokens)  # what limits may reserve
    check_extra_params(alias, extras)
    await guardrails.check_input(ctx, alias, request, gw.injection_classifier)  # block, redact
    hit = await cache.lookup(gw, ctx, alias, request, extras, dialect_of(native))
    if hit is not None:
        await limits.admit_cached(gw, ctx)  # counts toward request rates, spends no tokens
        if request.is_stream:
            return CachedStream(ctx, hit, request)
        return ChatReply(served_body(ctx, hit), None)
    await limits.admit_chat(gw, ctx, alias, request)  # settled when the request ends
    routing = {
        "lookup": gw.alias_lookup(ctx.workspace),
        "default_strategy": ctx.workspace.settings.get("default_strategy"),
        "native": guardrails.native_lane(ctx, native),  # None: translate for every deployment
    }

    if request.is_stream:
        opened = await gw.router.open_stream(ctx.trace, alias, request, extras, **routing)
        ctx.deployment = opened.deployment
        shaper = OutputShaper.for_request(ctx, partial(cache.store_stream, gw, ctx))
        return ChatStream(ctx, opened, request, shaper)  # metered, filtered, cached as it ends

    served = await gw.router.chat(ctx.trace, alias, request, extras, **routing)
    ctx.deployment = served.deployment
    ctx.usage = reported_or_estimated_usage(served.body, request)
    ctx.cost_micros += cost_micros(served.deployment, ctx.usage)
    guardrails.filter_output(ctx, served.body)  # block or redact the answer
    cache.store(gw, ctx, served.body)  # off the response path
    guardrails.restore(ctx, served.body)  # reversible masking: the caller's values back
    return ChatReply(served.body, served.deployment, served.raw)


def dialect_of(native: NativeRequest | None) -> str:
    """The cache's dialect partition. Requests using what only one provider format can
    serve (server tools, ...) are not cached: their answers depend on more than the chat form."""
    if native is None:
        return ""
    return NO_CACHE if native.native_only else native.format


def check_extra_params(alias: Alias, extras: dict[str, Any]) -> None:
    """Parameters outside OpenAI's schema pass only where the alias allows them."""
    for name in extras:
        if name not in alias.extra_params:
            raise bad_request(
                f"Unrecognized request argument supplied: {name}",
                param=name,
                code=ErrorCode.UNKNOWN_PARAMETER,
            )


def reported_or_estimated_usage(body: dict[str, Any], request: ChatCompletionRequest) -> Usage:
    """The provider's usage; an estimate written into the body when it reported none."""
    usage = Usage.from_openai(body.get("usage"))
    if usage is None:
        usage = estimate_usage(request, completion_text(body))
        body["usage"] = usage.to_openai()
    return usage
