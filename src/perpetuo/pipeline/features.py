"""What caching and guardrails add to a finished request's metrics and request-log record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perpetuo.metering.record import RequestRecord
from perpetuo.pipeline.context import RequestContext

if TYPE_CHECKING:
    from perpetuo.observability.metrics import GatewayMetrics


def observe_features(metrics: GatewayMetrics, ctx: RequestContext) -> None:
    run = ctx.cache
    if run is not None and run.policy is not None:
        metrics.cache.labels(run.result).inc()
        if run.hit:
            metrics.saved.inc(run.saved_cost_micros / 1_000_000)
            if run.saved is not None:
                alias = metrics._alias(ctx.alias)
                metrics.tokens.labels(alias, "", "saved").inc(run.saved.total_tokens)
    guard = ctx.guardrails
    if guard is not None:
        for (_, detector, action), count in guard.report.counts.items():
            metrics.guardrails.labels(detector, action).inc(count)


def note_cache(record: RequestRecord, ctx: RequestContext) -> None:
    """The outcome, and for hits what was saved (tokens go in `detail`: no column holds them)."""
    run = ctx.cache
    record.cache = run.result
    if not run.hit:
        return
    answer, saved = run.answer, run.saved
    record.saved_cost_micros = run.saved_cost_micros
    record.provider, record.model = answer.provider or None, answer.model or None
    detail = {"result": run.result}
    if saved is not None:
        detail["saved_prompt_tokens"] = saved.prompt_tokens
        detail["saved_completion_tokens"] = saved.completion_tokens
    if run.similarity is not None:
        detail["similarity"] = run.similarity
    record.detail = {**(record.detail or {}), "cache": detail}
