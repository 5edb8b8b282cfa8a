"""The per-request metrics update prometheus_client's children directly: what a scrape shows
must be exactly what the library's own `inc` and `observe` would have made, bucket by bucket."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from perpetuo.observability.metrics import LATENCY_BUCKETS, OVERHEAD_BUCKETS, GatewayMetrics
from perpetuo.observability.request_series import Observe, adder

# Bounds themselves, values just past them, zero, and beyond the last bound (+Inf).
VALUES = [0.0, 0.005, 0.00500001, 0.3, 1, 2.5, 2.6, 59.9, 300, 300.5, 1e9, 0.0001]


def _histograms(
    buckets: tuple[float, ...],
) -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    """Twin histograms in two registries: one updated here, one by the library."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = Histogram("h_seconds", "h", ["kind"], buckets=buckets, registry=ours)
    reference = Histogram("h_seconds", "h", ["kind"], buckets=buckets, registry=theirs)
    return ours, fast, theirs, reference


def test_histogram_observations_land_where_the_library_puts_them():
    for buckets in (LATENCY_BUCKETS, OVERHEAD_BUCKETS):
        ours, fast, theirs, reference = _histograms(buckets)
        observe = Observe(fast, "chat")
        for value in VALUES:
            observe(value)
            reference.labels("chat").observe(value)
        assert generate_latest(ours) == generate_latest(theirs)


def test_counter_additions_match_the_library():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = Counter("c", "c", ["a", "b"], registry=ours)
    reference = Counter("c", "c", ["a", "b"], registry=theirs)
    for labels, amount in [(("x", "1"), 1), (("x", "1"), 2.5), (("y", "2"), 7), (("x", "1"), 0)]:
        adder(fast, *labels)(amount)
        reference.labels(*labels).inc(amount)
    assert generate_latest(ours) == generate_latest(theirs)


def test_a_negative_or_nan_time_counts_as_zero_and_never_lowers_the_sum():
    ours, fast, _, _ = _histograms(LATENCY_BUCKETS)
    observe = Observe(fast, "chat")
    observe(1.0)
    observe(-5.0)
    observe(math.nan)
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(generate_latest(ours).decode())
        for s in family.samples
    }
    assert samples[("h_seconds_sum", None)] == 1.0
    assert samples[("h_seconds_count", None)] == 3
    assert samples[("h_seconds_bucket", "0.005")] == 2  # the two clamped to zero


def _ctx(latency_ms: float, upstream_ms: float, prompt: int, completion: int) -> SimpleNamespace:
    """What `observe` reads of a finished chat request."""
    attempt = SimpleNamespace(
        error_kind=None, provider="mock", deployment="mock/gpt-4o-mini", latency_ms=upstream_ms
    )
    return SimpleNamespace(
        endpoint="chat",
        alias="gpt-4o-mini",
        deployment=SimpleNamespace(provider="mock"),
        error_code=None,
        status=200,
        latency_ms=latency_ms,
        stream=False,
        ttft_ms=None,
        trace=SimpleNamespace(attempts=[attempt], fallback_used=False),
        usage=SimpleNamespace(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0),
        cost_micros=30,
    )


def _scrape(metrics: GatewayMetrics) -> Callable[..., float]:
    """The scrape's value of a sample, by name and every label value."""
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        for s in family.samples
    }
    return lambda name, **labels: samples[(name, frozenset(labels.items()))]


def test_a_request_is_counted_timed_and_metered_in_its_series():
    metrics = GatewayMetrics({"gpt-4o-mini"}, {"mock"})
    metrics.observe(_ctx(latency_ms=5.0, upstream_ms=4.5, prompt=12, completion=20))
    metrics.observe(_ctx(latency_ms=40.0, upstream_ms=39.0, prompt=3, completion=-7))
    got = _scrape(metrics)
    chat = {"endpoint": "chat", "alias": "gpt-4o-mini"}
    requests = chat | {"provider": "mock", "status_class": "2xx", "error": ""}
    assert got("perpetuo_requests_total", **requests) == 2
    duration = chat | {"stream": "false"}
    assert got("perpetuo_request_duration_seconds_bucket", **duration, le="0.005") == 1
    assert got("perpetuo_request_duration_seconds_bucket", **duration, le="0.025") == 1
    assert got("perpetuo_request_duration_seconds_bucket", **duration, le="0.05") == 2
    assert math.isclose(got("perpetuo_request_duration_seconds_sum", **duration), 0.045)
    assert got("perpetuo_gateway_overhead_seconds_bucket", endpoint="chat", le="0.0005") == 1
    assert got("perpetuo_gateway_overhead_seconds_bucket", endpoint="chat", le="0.001") == 2
    tokens = {"alias": "gpt-4o-mini", "provider": "mock"}
    assert got("perpetuo_tokens_total", **tokens, kind="prompt") == 15
    # An upstream's negative count adds nothing; the counter never goes down.
    assert got("perpetuo_tokens_total", **tokens, kind="completion") == 20
    assert math.isclose(got("perpetuo_cost_usd_total", **tokens), 0.00006)
