"""Prometheus metrics: one `observe` per finished request, gauges refreshed in the background.

Label values are bounded: aliases and providers come from the platform config; a
workspace's own aliases and credentials are all labelled "workspace", and keys or users are
never labels. With several worker processes, prometheus_client's multiprocess mode (set up
by `perpetuo serve --workers N`) aggregates every worker's values at scrape time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from perpetuo.observability.request_series import AttemptSeries, RequestSeries
from perpetuo.schema.operations import OPERATION_ENDPOINTS
from perpetuo.transport.connection import Connection

disable_created_metrics()  # *_created series double the scrape for little use

if TYPE_CHECKING:
    from perpetuo.limits.guard import LimitStats
    from perpetuo.metering.writer import UsageWriter
    from perpetuo.pipeline.context import RequestContext
    from perpetuo.routing.table import RoutingTable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
WORKSPACE = "workspace"
# Anything else (e.g. 404s): "other".
ENDPOINTS = frozenset({"chat", "chat_sessions", "embeddings", "models", *OPERATION_ENDPOINTS})
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
WRITER_STATES = {"ok": 0, "degraded": 1, "full": 2}


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class GatewayMetrics:
    def __init__(self, platform_aliases: set[str], platform_providers: set[str]) -> None:
        self.aliases = platform_aliases
        self.providers = platform_providers
        # The series each kind of request and of attempt updates (request_series.py).
        self._series: dict[tuple[str, str, str, str, str, bool], RequestSeries] = {}
        self._attempt_series: dict[tuple[str, str, str], AttemptSeries] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "perpetuo_requests",
            "Requests served, by outcome",
            ["endpoint", "alias", "provider", "status_class", "error"],
            registry=r,
        )
        self.duration = Histogram(
            "perpetuo_request_duration_seconds",
            "Client-facing request time",
            ["endpoint", "alias", "stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "perpetuo_time_to_first_token_seconds",
            "Time to the first streamed chunk",
            ["alias"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream = Histogram(
            "perpetuo_upstream_duration_seconds",
            "Upstream attempt time",
            ["provider", "deployment", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "perpetuo_gateway_overhead_seconds",
            "Request time not spent waiting on upstreams",
            ["endpoint"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        # Sampled by observability/loop_lag.py; a stall delays every request in the worker.
        self.loop_lag = Histogram(
            "perpetuo_event_loop_lag_seconds",
            "How late the event loop ran a timer that was due (sampled every 0.1 s)",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "perpetuo_tokens", "Tokens metered", ["alias", "provider", "kind"], registry=r
        )
        self.cost = Counter(
            "perpetuo_cost_usd", "Cost metered, USD", ["alias", "provider"], registry=r
        )
        self.fallbacks = Counter(
            "perpetuo_fallbacks",
            "Requests served by other than the first choice",
            ["alias"],
            registry=r,
        )
        self.attempts = Counter(
            "perpetuo_upstream_attempts",
            "Upstream attempts, by outcome",
            ["provider", "deployment", "outcome"],
            registry=r,
        )
        self.rejections = Counter(
            "perpetuo_rejections",
            "Requests refused by limits, budgets or policies",
            ["reason"],
            registry=r,
        )
        self.cache = Counter(
            "perpetuo_cache_lookups", "Response cache lookups", ["result"], registry=r
        )
        self.saved = Counter(
            "perpetuo_cache_saved_usd", "Cost saved by cache hits, USD", registry=r
        )
        self.guardrails = Counter(
            "perpetuo_guardrail_actions",
            "Guardrail findings acted on",
            ["detector", "action"],
            registry=r,
        )
        mode: dict[str, Any] = {"multiprocess_mode": "livesum"}
        self.in_flight = Gauge(
            "perpetuo_in_flight_requests", "Requests being served", registry=r, **mode
        )
        self.queue_depth = Gauge(
            "perpetuo_usage_queue_depth",
            "Request-log records waiting to be written",
            registry=r,
            **mode,
        )
        self.spilled = Gauge(
            "perpetuo_usage_spilled_records",
            "Request-log records spilled to disk (since start)",
            registry=r,
            **mode,
        )
        self.flush_seconds = Gauge(
            "perpetuo_usage_flush_seconds",
            "Duration of the last request-log batch write",
            registry=r,
            multiprocess_mode="livemax",
        )
        # The request-log writer. The spill directory is shared by a host's workers, and each
        # reports all of it: the max, not the sum.
        self.writer_lag = Gauge(
            "perpetuo_usage_writer_lag_seconds",
            "Age of the oldest request-log record not yet in the database",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.writer_state = Gauge(
            "perpetuo_usage_writer_state",
            "Request-log writer: 0 ok, 1 degraded (lagging), 2 full (spill at its cap)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.spill_bytes = Gauge(
            "perpetuo_usage_spill_bytes",
            "Spilled request-log bytes waiting to be replayed",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.spill_files = Gauge(
            "perpetuo_usage_spill_files",
            "Spill files waiting to be replayed",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.rows_written = Counter(
            "perpetuo_usage_rows_written",
            "Request-log rows inserted, live and replayed",
            registry=r,
        )
        self.replayed = Counter(
            "perpetuo_usage_replayed_records",
            "Spilled request-log records replayed into the database",
            registry=r,
        )
        self.dropped = Counter(
            "perpetuo_usage_dropped_records",
            "Request-log records dropped because memory and the spill were both full",
            registry=r,
        )
        self.journaled = Counter(
            "perpetuo_usage_journaled_records",
            "Request-log records appended to the local journal",
            registry=r,
        )
        self.journal_failures = Counter(
            "perpetuo_usage_journal_failures",
            "Failed request-log journal writes or fsyncs (their records went on unjournaled)",
            registry=r,
        )
        self.access_sampled_out = Counter(
            "perpetuo_access_log_sampled_out",
            "Requests left out of the access log by its sampling policy",
            registry=r,
        )
        self.access_dropped = Counter(
            "perpetuo_access_log_dropped_lines",
            "Access-log lines dropped because the output could not keep up",
            registry=r,
        )
        self.limit_settlements = Counter(
            "perpetuo_limits_settlements_deferred",
            "Settlements that could not reach Redis at once: queued, sent later, or dropped",
            ["outcome"],
            registry=r,
        )
        self.limit_admissions = Counter(
            "perpetuo_limits_admissions",
            "Requests admitted by the limits engine, by where they were checked: in the shared "
            "counters (Redis, or memory without it), on this instance's leases of them, or by "
            "its own counters while Redis was away",
            ["checked"],
            registry=r,
        )
        # Set at scrape time (and with the other gauges): what grows when something leaks.
        self.upstream_connections = Gauge(
            "perpetuo_upstream_connections_open",
            "Upstream connections open, pooled or in use",
            registry=r,
            **mode,
        )
        self.tasks = Gauge(
            "perpetuo_event_loop_tasks",
            "Tasks alive on the event loop (requests, streams, background work)",
            registry=r,
            **mode,
        )
        self._totals: dict[str, int] = {}
        self.breaker = Gauge(
            "perpetuo_circuit_breaker_state",
            "0 closed, 1 half-open, 2 open",
            ["deployment"],
            registry=r,
            multiprocess_mode="livemax",
        )

    # -- labels ------------------------------------------------------------------------------

    def _alias(self, alias: str | None) -> str:
        if alias is None:
            return ""
        return alias if alias in self.aliases else WORKSPACE

    def _provider(self, provider: str | None) -> str:
        if provider is None:
            return ""
        return provider if provider in self.providers else WORKSPACE

    def _deployment(self, deployment: str) -> str:
        provider = deployment.split("/", 1)[0]
        return deployment if provider in self.providers else WORKSPACE

    # -- per request -------------------------------------------------------------------------

    def observe(self, ctx: RequestContext) -> None:
        endpoint = ctx.endpoint if ctx.endpoint in ENDPOINTS else "other"
        alias = self._alias(ctx.alias)
        deployment = ctx.deployment
        provider = self._provider(deployment.provider if deployment else None)
        kind = (
            endpoint,
            alias,
            provider,
            f"{ctx.status // 100}xx",
            ctx.error_code or "",
            ctx.stream,
        )
        series = self._series.get(kind)
        if series is None:
            series = self._series[kind] = RequestSeries(self, *kind)
        series.requests(1)
        if series.rejected:
            series("rejections", 1)
        if ctx.latency_ms is None:
            return
        series("duration", ctx.latency_ms / 1000)
        if ctx.stream and ctx.ttft_ms is not None:
            series("ttft", ctx.ttft_ms / 1000)
        attempts = ctx.trace.attempts
        upstream_ms = 0.0
        for attempt in attempts:
            labels = (
                self._provider(attempt.provider),
                self._deployment(attempt.deployment),
                attempt.error_kind or "ok",
            )
            tried = self._attempt_series.get(labels)
            if tried is None:
                tried = self._attempt_series[labels] = AttemptSeries(self, *labels)
            tried.attempts(1)
            if attempt.latency_ms is not None:
                upstream_ms += attempt.latency_ms
                tried.upstream(attempt.latency_ms / 1000)
        if attempts:
            series("overhead", (ctx.latency_ms - upstream_ms) / 1000)
        if ctx.trace.fallback_used:
            series("fallbacks", 1)
        usage = ctx.usage
        if usage is not None:  # an upstream's negative count adds nothing
            series("prompt", max(0, usage.prompt_tokens))
            series("completion", max(0, usage.completion_tokens))
            if usage.cached_tokens > 0:
                series("cached", usage.cached_tokens)
        if ctx.cost_micros > 0:
            series("cost", ctx.cost_micros / 1_000_000)

    # -- gauges ------------------------------------------------------------------------------

    def refresh(
        self, *, queue_depth: int, spilled: int, flush_seconds: float, breakers: dict[str, str]
    ) -> None:
        self.queue_depth.set(queue_depth)
        self.spilled.set(spilled)
        self.flush_seconds.set(flush_seconds)
        self.sample_process()
        for deployment, state in breakers.items():
            self.breaker.labels(self._deployment(deployment)).set(BREAKER_STATES.get(state, 0))

    def sample_process(self) -> None:
        """Open upstream connections and live tasks: a counter read and a weak-set length."""
        self.upstream_connections.set(Connection.open_count)
        with contextlib.suppress(RuntimeError):  # no running loop: a scrape from outside one
            self.tasks.set(len(asyncio.all_tasks()))

    def refresh_request_log(self, health: dict[str, Any], totals: dict[str, int]) -> None:
        """The writer's `health()` and its running totals (counters advance by the change)."""
        self.writer_lag.set(health["lag_seconds"])
        self.writer_state.set(WRITER_STATES.get(health["state"], 0))
        self.spill_bytes.set(health["spill_bytes"])
        self.spill_files.set(health["spill_files"])
        counters = {
            "written": self.rows_written,
            "replayed": self.replayed,
            "dropped": self.dropped,
            "journaled": self.journaled,
            "journal_failures": self.journal_failures,
            "sampled_out": self.access_sampled_out,
            "access_dropped": self.access_dropped,
        }
        for name, counter in counters.items():
            self._advance(name, counter, totals.get(name, 0))

    def refresh_limits(self, stats: LimitStats) -> None:
        """The limits engine's admissions and deferred settlements (counters advance by the
        change)."""
        for outcome in ("queued", "retried", "dropped"):
            name = f"settles_{outcome}"
            self._advance(name, self.limit_settlements.labels(outcome), getattr(stats, name))
        admitted = {
            "shared": stats.admitted_shared - stats.admitted_leased,
            "lease": stats.admitted_leased,
            "fallback": stats.local_fallbacks,
        }
        for checked, total in admitted.items():
            self._advance(f"admitted_{checked}", self.limit_admissions.labels(checked), total)

    def _advance(self, name: str, counter: Any, total: int) -> None:
        """Move `counter` on by what the running `total` gained since the last refresh."""
        if total > self._totals.get(name, 0):
            counter.inc(total - self._totals.get(name, 0))
        self._totals[name] = total

    @staticmethod
    def request_log_totals(usage: UsageWriter) -> dict[str, int]:
        """The writer's and its journal's running totals, for `refresh_request_log`."""
        journal = usage.journal
        return {
            "written": usage.written,
            "replayed": usage.replayed,
            "dropped": usage.dropped,
            "journaled": journal.appended if journal is not None else 0,
            "journal_failures": journal.failed_writes if journal is not None else 0,
        }

    def render(self) -> tuple[bytes, str]:
        """The exposition text: this process's registry, or every worker's in multiprocess mode."""
        self.sample_process()
        if multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    @classmethod
    def for_table(cls, table: RoutingTable, providers: set[str]) -> GatewayMetrics:
        return cls(set(table.aliases), providers)
