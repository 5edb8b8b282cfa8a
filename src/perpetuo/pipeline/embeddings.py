"""Embeddings, stage by stage."""

from __future__ import annotations

from typing import Any

from perpetuo.metering.recorder import cost_micros
from perpetuo.metering.tokens import estimate_input_tokens
from perpetuo.pipeline import limits
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.routing.router import Served
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import bad_request
from perpetuo.schema.usage import Usage


async def create_embeddings(gw: Gateway, ctx: RequestContext, request: EmbeddingRequest) -> Served:
    principal = ctx.principal
    assert principal is not None, "authenticated at ingress"
    gw.require_scope(principal, "embeddings")
    ctx.workspace = await gw.workspace(principal)
    alias = gw.resolve_alias(ctx.workspace, principal, request.model)
    ctx.alias = alias.name
    gw.require_endpoint(alias, Endpoint.EMBEDDINGS)
    validate_inputs(request)
    await limits.admit_embeddings(gw, ctx, alias, request)
    served = await gw.router.embeddings(
        ctx.trace,
        alias,
        request,
        lookup=gw.alias_lookup(ctx.workspace),
        default_strategy=ctx.workspace.settings.get("default_strategy"),
    )
    ctx.deployment = served.deployment
    ctx.usage = _usage(served.body, request)
    ctx.cost_micros = cost_micros(served.deployment, ctx.usage)
    return served


def validate_inputs(request: EmbeddingRequest) -> None:
    """Strings, or token arrays; never empty (OpenAI rejects both)."""
    if isinstance(request.input, str):
        if not request.input:
            raise bad_request("`input` cannot be an empty string.", param="input")
        return
    items = request.input
    if all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        return  # one prompt as token ids
    for index, item in enumerate(items):
        if isinstance(item, str):
            if not item:
                raise bad_request(f"`input[{index}]` cannot be an empty string.", param="input")
        elif (
            isinstance(item, list)
            and item
            and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
        ):
            continue
        else:
            raise bad_request(
                "`input` must be a string, an array of strings, an array of token ids, "
                "or an array of token-id arrays.",
                param="input",
            )


def _usage(body: dict[str, Any], request: EmbeddingRequest) -> Usage:
    usage = body.get("usage")
    prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if isinstance(prompt, int):
        return Usage(prompt_tokens=prompt)
    estimated = estimate_input_tokens(request.inputs_as_list())
    body["usage"] = {"prompt_tokens": estimated, "total_tokens": estimated}
    return Usage(prompt_tokens=estimated, estimated=True)
