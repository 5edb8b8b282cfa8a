"""From a finished request's context to its request-log record and cost."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from perpetuo.metering.pricing import cost_usd, default_catalog, to_micro_usd
from perpetuo.metering.record import RequestRecord
from perpetuo.routing.table import Deployment
from perpetuo.schema.operations import OPERATION_ENDPOINTS
from perpetuo.schema.usage import Usage

if TYPE_CHECKING:
    from perpetuo.pipeline.context import RequestContext

# Inference calls, named by the API (dialect) the client spoke, or by the operation
# (schema/operations.py); messages posted to chat sessions and the summaries of their old
# turns. Token counting and stored responses' or sessions' reads, deletes and lists are not.
LOGGED_ENDPOINTS = frozenset(
    {"chat", "responses", "messages", "embeddings", *OPERATION_ENDPOINTS}
    | {"chat_sessions", "chat_sessions.summary"}
)


def cost_micros(deployment: Deployment | None, usage: Usage | None) -> int:
    """USD micro-dollars for `usage` on `deployment`; 0 when its price is unknown."""
    if deployment is None or usage is None:
        return 0
    if usage.cost_usd is not None and trusts_reported_cost(deployment):
        return to_micro_usd(Decimal(str(usage.cost_usd)))
    price = default_catalog().price_for(
        deployment.model, deployment.config.price, deployment.target.provider_type
    )
    return to_micro_usd(cost_usd(usage, price)) if price is not None else 0


def trusts_reported_cost(deployment: Deployment) -> bool:
    """The provider's own charge is metered when its adapter reports one, the operator set
    no `price:` for the deployment, and the operator configured it: a tenant's upstream
    could report any number to spend past its budget."""
    return (
        deployment.adapter.reports_cost
        and deployment.config.price is None
        and deployment.target.egress is None
    )


def build_record(ctx: RequestContext) -> RequestRecord | None:
    """None for requests that are not inference calls or have no workspace to charge."""
    principal = ctx.principal
    if ctx.endpoint not in LOGGED_ENDPOINTS or principal is None or principal.workspace_id is None:
        return None
    usage = ctx.usage or Usage()
    deployment = ctx.deployment
    trace = ctx.trace
    return RequestRecord(
        id=ctx.request_id,
        workspace_id=principal.workspace_id,
        created_at=ctx.arrived,
        endpoint=ctx.endpoint,
        status=ctx.status,
        key_id=principal.key_id,
        user_id=principal.user_id,
        team_id=principal.team_id,
        alias=ctx.alias,
        provider=deployment.provider if deployment else None,
        model=deployment.model if deployment else None,
        strategy=trace.strategy if trace.attempts else None,
        attempts=len(trace.attempts),
        fallback=trace.fallback_used,
        stream=ctx.stream,
        error_code=ctx.error_code,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        usage_estimated=usage.estimated,
        cost_micros=ctx.cost_micros,
        latency_ms=ctx.latency_ms,
        ttft_ms=ctx.ttft_ms,
        client_ip=ctx.client_ip or None,
        user_agent=(ctx.user_agent or "")[:300] or None,
        tags=ctx.tags,
        trace=trace.as_dict() if trace.attempts else None,
        detail=ctx.detail,
        unit=ctx.unit,
        quantity=ctx.quantity,
    )
