"""The limits stage: what a request may use, reserved before routing, settled after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perpetuo.limits import LimitRequest, WorkspaceLimits
from perpetuo.metering import operations
from perpetuo.metering.pricing import default_catalog, to_micro_usd
from perpetuo.metering.tokens import estimate_input_tokens, estimate_prompt_tokens
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.routing.table import Alias
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.operations import OperationRequest


async def admit(
    gw: Gateway,
    ctx: RequestContext,
    alias: Alias,
    prompt_tokens: int,
    max_output_tokens: int,
    max_cost_micros: int | None = None,
) -> None:
    """Reserve against every limit of the key, user, team and workspace, or raise the refusal
    (429 with Retry-After, 402 for budgets and credits). The most expensive deployment of
    the alias prices the worst case, so a budget can never be overspent by a fallback.
    `max_cost_micros`: that worst case, for work not priced by tokens alone."""
    principal = ctx.principal
    assert principal is not None
    price = (
        worst_price_micros(alias, prompt_tokens, max_output_tokens)
        if max_cost_micros is None
        else max_cost_micros
    )
    ctx.admission = await gw.limits.admit(
        LimitRequest(
            ctx.request_id,
            principal.workspace_id,
            key_id=principal.key_id,
            user_id=principal.user_id,
            team_id=principal.team_id,
            key_limits=principal.limits,
            team_limits=principal.team_limits,
            user_limits=principal.user_limits,
            workspace=ctx.workspace.limits,
            prompt_tokens=prompt_tokens,
            max_output_tokens=max_output_tokens,
            max_cost_micros=price,
        )
    )


def _unlimited(ctx: RequestContext) -> bool:
    """Nothing to check: no key, team or member limits and nothing limited at the workspace
    (most requests of an installation without plans), so no estimate is worth computing."""
    ws = ctx.workspace.limits
    principal = ctx.principal
    return (
        not (principal and (principal.limits or principal.team_limits or principal.user_limits))
        and ws.plan is None
        and not ws.limits
        and not ws.user_limits
        and ws.budget_usd is None
        and ws.budget_soft_usd is None
        and not ws.credits_required
    )


async def admit_chat(
    gw: Gateway, ctx: RequestContext, alias: Alias, request: ChatCompletionRequest
) -> None:
    if _unlimited(ctx):
        return
    output = request.output_token_limit or gw.config.routing.default_output_tokens
    await admit(gw, ctx, alias, estimate_prompt_tokens(request), output)


async def admit_embeddings(
    gw: Gateway, ctx: RequestContext, alias: Alias, request: EmbeddingRequest
) -> None:
    if _unlimited(ctx):
        return
    await admit(gw, ctx, alias, estimate_input_tokens(request.inputs_as_list()), 0)


async def admit_operation(
    gw: Gateway, ctx: RequestContext, alias: Alias, request: OperationRequest
) -> None:
    """Images, audio, rerank, text completions, moderations: priced in their own units."""
    if _unlimited(ctx):
        return
    worst = operations.worst_cost(request, alias.deployments)
    prompt, output = operations.prompt_tokens(request), operations.output_tokens(request)
    await admit(gw, ctx, alias, prompt, output, worst)


REQUEST_LIMITS = ("rpm", "max_parallel")


async def admit_cached(gw: Gateway, ctx: RequestContext) -> None:
    """A cache hit: it counts toward request-rate (and concurrency) limits, and spends no
    tokens, budget or credits, so only those request limits are checked."""
    if _unlimited(ctx):
        return
    principal = ctx.principal
    assert principal is not None
    ws = ctx.workspace.limits
    scope = ws.scope_limits()
    requests_only = WorkspaceLimits(
        limits={name: getattr(scope, name) for name in REQUEST_LIMITS},
        user_limits=_requests_only(ws.user_limits),
    )
    ctx.admission = await gw.limits.admit(
        LimitRequest(
            ctx.request_id,
            principal.workspace_id,
            key_id=principal.key_id,
            user_id=principal.user_id,
            team_id=principal.team_id,
            key_limits=_requests_only(principal.limits),
            team_limits=_requests_only(principal.team_limits),
            user_limits=_requests_only(principal.user_limits),
            workspace=requests_only,
        )
    )


def _requests_only(limits: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not limits:
        return None
    return {name: limits[name] for name in REQUEST_LIMITS if limits.get(name)} or None


def worst_price_micros(alias: Alias, prompt_tokens: int, output_tokens: int) -> int:
    catalog = default_catalog()
    worst = 0
    for deployment in alias.deployments:
        price = catalog.price_for(
            deployment.model, deployment.config.price, deployment.target.provider_type
        )
        if price is not None:
            worst = max(worst, to_micro_usd(price.estimate(prompt_tokens, output_tokens)))
    return worst
