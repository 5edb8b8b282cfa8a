"""Images, audio, rerank, text completions and moderations, stage by stage: one path for
every kind of call but chat, parameterised by the operation (embeddings, which have a typed
request of their own, take the same stages in embeddings.py).

Guardrails and the response cache apply to chat (and its dialects) only.
"""

from __future__ import annotations

from dataclasses import dataclass

from perpetuo.metering.operations import meter, output_tokens, prompt_tokens
from perpetuo.pipeline import limits
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.passthrough import OperationStream, note
from perpetuo.pipeline.runtime import Gateway
from perpetuo.providers.base import OperationAnswer, UpstreamCall
from perpetuo.routing.job import RouteJob
from perpetuo.routing.table import Deployment
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.operations import OperationRequest

# The key scope each kind of work needs (text completions are chat's).
SCOPES: dict[str, str] = {
    Endpoint.COMPLETIONS: "chat",
    Endpoint.IMAGES: "images",
    Endpoint.TRANSCRIPTIONS: "audio",
    Endpoint.SPEECH: "audio",
    Endpoint.RERANK: "rerank",
    Endpoint.MODERATIONS: "moderations",
}


@dataclass(slots=True)
class OperationReply:
    answer: OperationAnswer
    deployment: Deployment


def streamed(request: OperationRequest) -> bool:
    """Answers passed on as they arrive: speech audio always, completions when asked."""
    return request.endpoint is Endpoint.SPEECH or request.stream


async def run_operation(
    gw: Gateway, ctx: RequestContext, request: OperationRequest
) -> OperationReply | OperationStream:
    principal = ctx.principal
    assert principal is not None, "authenticated at ingress"
    gw.require_scope(principal, SCOPES[request.endpoint])
    ctx.workspace = await gw.workspace(principal)
    alias = gw.resolve_alias(ctx.workspace, principal, request.model)
    ctx.alias, ctx.stream = alias.name, request.stream
    gw.require_endpoint(alias, request.endpoint)
    await limits.admit_operation(gw, ctx, alias, request)  # settled when the request ends
    job = RouteJob.of_size(
        streamed(request), prompt_tokens(request), output_tokens(request), request.endpoint
    )
    routing = {
        "lookup": gw.alias_lookup(ctx.workspace),
        "default_strategy": ctx.workspace.settings.get("default_strategy"),
    }

    def build(dep: Deployment) -> UpstreamCall:
        return dep.adapter.operation_request(request, dep.target)

    if streamed(request):
        opened = await gw.router.open_operation(ctx.trace, alias, job, build, **routing)
        ctx.deployment = opened.deployment
        return OperationStream(ctx, opened, request)  # metered as it ends

    answer, deployment = await gw.router.operation(
        ctx.trace,
        alias,
        job,
        build,
        lambda dep, body, content_type: dep.adapter.operation_response(
            request, body, content_type, dep.target
        ),
        **routing,
    )
    ctx.deployment = deployment
    note(ctx, meter(request, answer, deployment))
    return OperationReply(answer, deployment)
