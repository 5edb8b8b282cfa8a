"""Folding request records into hourly usage rollups, per dimension.

Each request adds to one row per dimension it has: all, endpoint (the API the client spoke:
chat, responses, messages or embeddings), alias, provider, model, key, user, and one per tag.
Percentiles come from the latency histogram kept in each row.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from typing import Any

from perpetuo.metering.record import RequestRecord
from perpetuo.store.schema import LATENCY_BUCKETS_MS, LATENCY_COLUMNS

RollupKey = tuple[str, dt.datetime, str, str]
SUMS = (  # counters that add up across rows; the latency histogram columns follow them
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_micros",
    "cache_hits",
    "saved_cost_micros",
    "latency_sum_ms",
)
COUNTERS = (*SUMS, *LATENCY_COLUMNS)
DIMENSIONS = ("all", "endpoint", "alias", "provider", "model", "key", "user", "tag")


def hour_of(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch - epoch % 3600, dt.UTC)


def latency_column(latency_ms: float) -> str:
    return LATENCY_COLUMNS[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)]


def _dimensions(record: RequestRecord) -> list[tuple[str, str]]:
    dims = [("all", "")]
    for dim, value in (
        ("endpoint", record.endpoint),
        ("alias", record.alias),
        ("provider", record.provider),
        ("model", record.model),
        ("key", record.key_id),
        ("user", record.user_id),
    ):
        if value:
            dims.append((dim, value[:200]))
    dims.extend(("tag", tag[:200]) for tag in record.tags or ())
    return dims


def fold(records: Iterable[RequestRecord]) -> dict[RollupKey, dict[str, Any]]:
    rollups: dict[RollupKey, dict[str, Any]] = {}
    for record in records:
        bucket = hour_of(record.created_at)
        increment: dict[str, Any] = {
            "requests": 1,
            "errors": 1 if record.is_error else 0,
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "cached_tokens": record.cached_tokens,
            "cost_micros": record.cost_micros,
            "cache_hits": 1 if record.cache in ("hit", "semantic-hit") else 0,
            "saved_cost_micros": record.saved_cost_micros,
            "latency_sum_ms": record.latency_ms or 0.0,
        }
        if record.latency_ms is not None:
            increment[latency_column(record.latency_ms)] = 1
        pairs = list(increment.items())
        for dim, value in _dimensions(record):
            key = (record.workspace_id, bucket, dim, value)
            row = rollups.get(key)
            if row is None:
                row = rollups[key] = dict.fromkeys(COUNTERS, 0)
            for name, amount in pairs:
                row[name] += amount
    return rollups


def percentile(histogram: list[int], q: float) -> float | None:
    """Estimate the q-quantile (ms) from bucket counts, interpolating inside the bucket."""
    total = sum(histogram)
    if total == 0:
        return None
    target = q * total
    seen = 0
    lower = 0.0
    for index, count in enumerate(histogram):
        upper = LATENCY_BUCKETS_MS[index] if index < len(LATENCY_BUCKETS_MS) else lower * 2 or 1.0
        if count and seen + count >= target:
            return lower + (upper - lower) * ((target - seen) / count)
        seen += count
        lower = float(upper)
    return lower
