"""OpenTelemetry traces (off unless an OTLP endpoint is configured).

One span per request, following the GenAI semantic conventions, with a child span per
upstream attempt. The request span continues the client's W3C `traceparent`, and its
context is sent upstream in `traceparent`, so a provider that traces joins the same trace.
Attempt spans are recorded from the routing trace's timings when the request ends, which
keeps the cost on the request path to one span start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perpetuo.pipeline.context import RequestContext

# gen_ai.provider.name values from the semantic conventions, by provider type.
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
}
OPERATIONS = {"chat": "chat", "embeddings": "embeddings", "completions": "text_completion"}


class Tracing:
    """The tracer, or nothing at all when disabled (every method is then a no-op)."""

    def __init__(
        self, endpoint: str | None, service_name: str = "perpetuo", exporter: Any = None
    ) -> None:
        self.enabled = bool(endpoint or exporter)
        self._provider: Any = None
        self._tracer: Any = None
        if not self.enabled:
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=_traces_url(endpoint or ""))
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        self._tracer = self._provider.get_tracer("perpetuo")
        self._propagator = TraceContextTextMapPropagator()

    def start(self, ctx: RequestContext, headers: Mapping[str, str]) -> None:
        """Open the request span (child of the client's traceparent) and set the header that
        carries it upstream."""
        if not self.enabled:
            return
        from opentelemetry import trace

        parent = self._propagator.extract(carrier=dict(headers))
        span = self._tracer.start_span(
            ctx.endpoint,
            context=parent,
            kind=trace.SpanKind.SERVER,
            start_time=int(ctx.arrived * 1e9),
        )
        ctx.span = span
        span_context = span.get_span_context()
        traceparent = (
            f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
            f"{int(span_context.trace_flags):02x}"
        )
        ctx.trace.upstream_headers = (("traceparent", traceparent),)

    def finish(self, ctx: RequestContext) -> None:
        span = getattr(ctx, "span", None)
        if span is None:
            return
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        operation = OPERATIONS.get(ctx.endpoint, ctx.endpoint)
        deployment = ctx.deployment
        span.update_name(f"{operation} {ctx.alias}" if ctx.alias else operation)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "http.response.status_code": ctx.status,
            "perpetuo.request_id": ctx.request_id,
        }
        if ctx.alias:
            attributes["gen_ai.request.model"] = ctx.alias
        if deployment is not None:
            attributes["gen_ai.provider.name"] = PROVIDER_NAMES.get(
                deployment.target.provider_type, deployment.target.provider_type
            )
            attributes["gen_ai.response.model"] = deployment.model
            attributes["perpetuo.provider"] = deployment.provider
        if ctx.usage is not None:
            attributes["gen_ai.usage.input_tokens"] = ctx.usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = ctx.usage.completion_tokens
        if ctx.error_code:
            attributes["error.type"] = ctx.error_code
            span.set_status(Status(StatusCode.ERROR, ctx.error_code))
        if ctx.trace.attempts:
            attributes["perpetuo.attempts"] = len(ctx.trace.attempts)
            attributes["perpetuo.fallback"] = ctx.trace.fallback_used
        span.set_attributes(attributes)
        parent = trace.set_span_in_context(span)
        offset = time.time() - time.perf_counter()  # attempts are timed on the perf counter
        for attempt in ctx.trace.attempts:
            start_ns = int((attempt.started + offset) * 1e9)
            end_ns = start_ns + int((attempt.latency_ms or 0.0) * 1e6)
            child = self._tracer.start_span(
                f"upstream {attempt.provider}",
                context=parent,
                kind=trace.SpanKind.CLIENT,
                start_time=start_ns,
            )
            child.set_attributes(
                {
                    "gen_ai.operation.name": operation,
                    "gen_ai.request.model": attempt.model,
                    "perpetuo.deployment": attempt.deployment,
                    "perpetuo.alias": attempt.alias,
                    **({"http.response.status_code": attempt.status} if attempt.status else {}),
                    **({"error.type": attempt.error_kind} if attempt.error_kind else {}),
                }
            )
            if attempt.error_kind:
                child.set_status(Status(StatusCode.ERROR, attempt.error_kind))
            child.end(end_time=end_ns)
        span.end(end_time=int((ctx.arrived + (ctx.latency_ms or 0.0) / 1000) * 1e9))

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


def _traces_url(endpoint: str) -> str:
    """An OTLP/HTTP base URL (http://collector:4318) gets the traces path appended."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"
