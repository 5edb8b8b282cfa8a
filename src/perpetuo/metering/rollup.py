"""Folding request records into hourly usage rollups, per dimension.

Each request adds to one row per dimension it has: all, endpoint (the API the client spoke:
chat, responses, messages or embeddings), alias, provider, model, key, user, team, and one
per tag.
Percentiles come from the latency histogram kept in each row, and never exceed the row's
slowest request (`latency_max_ms`, which combines by max where every other column adds up).
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
MAXIMA = ("latency_max_ms",)  # combined by max, not by sum
COUNTERS = (*SUMS, *LATENCY_COLUMNS, *MAXIMA)
DIMENSIONS = ("all", "endpoint", "alias", "provider", "model", "key", "user", "team", "tag")


def hour_of(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch - epoch % 3600, dt.UTC)


def latency_column(latency_ms: float) -> str:
    return LATENCY_COLUMNS[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)]


_LATENCY_AT = len(SUMS)  # where the histogram starts in a group's counter list
_MAX_AT = len(SUMS) + len(LATENCY_COLUMNS)  # latency_max_ms
_Name = str | None
# workspace, hour, endpoint, alias, provider, model, key, user, team, tags
_GroupKey = tuple[str, int, str, _Name, _Name, _Name, _Name, _Name, _Name, tuple[str, ...]]


def _dimensions(key: _GroupKey) -> list[tuple[str, str]]:
    _, _, endpoint, alias, provider, model, key_id, user_id, team_id, tags = key
    dims = [("all", "")]
    for dim, value in (
        ("endpoint", endpoint),
        ("alias", alias),
        ("provider", provider),
        ("model", model),
        ("key", key_id),
        ("user", user_id),
        ("team", team_id),
    ):
        if value:
            dims.append((dim, value[:200]))
    dims.extend(("tag", tag[:200]) for tag in tags)
    return dims


def fold(records: Iterable[RequestRecord]) -> dict[RollupKey, dict[str, Any]]:
    """Sum records into rollup rows, as counter names to values."""
    return {key: dict(zip(COUNTERS, row, strict=True)) for key, row in fold_rows(records).items()}


def fold_rows(records: Iterable[RequestRecord]) -> dict[RollupKey, list[Any]]:
    """Sum records into rollup rows, each a list of counters in `COUNTERS` order (read-only:
    rows may share a list). Records are first summed per group of identical dimensions, then
    each row sums its groups column by column (C-level `sum` over `zip`): under many keys a
    batch has about one group per record, each in 6-9 rows, and most rows hold many groups."""
    members: dict[RollupKey, list[list[Any]]] = {}
    buckets: dict[int, dt.datetime] = {}
    for key, sums in _groups(records).items():
        bucket = buckets.get(key[1])
        if bucket is None:
            bucket = buckets[key[1]] = dt.datetime.fromtimestamp(key[1] * 3600, dt.UTC)
        for dim, value in _dimensions(key):
            rollup_key = (key[0], bucket, dim, value)
            found = members.get(rollup_key)
            if found is None:
                members[rollup_key] = [sums]
            else:
                found.append(sums)
    rows: dict[RollupKey, list[Any]] = {}
    for rollup_key, lists in members.items():
        if len(lists) == 1:
            rows[rollup_key] = lists[0]
            continue
        columns = list(zip(*lists, strict=True))
        row = [sum(column) for column in columns]
        row[_MAX_AT] = max(columns[_MAX_AT])
        rows[rollup_key] = row
    return rows


def _groups(records: Iterable[RequestRecord]) -> dict[_GroupKey, list[Any]]:
    """Records summed per group of identical dimensions: one addition per counter."""
    groups: dict[_GroupKey, list[Any]] = {}
    for record in records:
        key = (
            record.workspace_id,
            int(record.created_at // 3600),
            record.endpoint,
            record.alias,
            record.provider,
            record.model,
            record.key_id,
            record.user_id,
            record.team_id,
            tuple(record.tags) if record.tags else (),
        )
        sums = groups.get(key)
        if sums is None:
            sums = groups[key] = [0] * len(COUNTERS)
            sums[8] = sums[_MAX_AT] = 0.0  # latency_sum_ms, latency_max_ms
        latency = record.latency_ms
        sums[0] += 1
        if record.status >= 400 or record.error_code is not None:
            sums[1] += 1
        sums[2] += record.prompt_tokens
        sums[3] += record.completion_tokens
        sums[4] += record.cached_tokens
        sums[5] += record.cost_micros
        if record.cache in ("hit", "semantic-hit"):
            sums[6] += 1
        sums[7] += record.saved_cost_micros
        if latency is not None:
            sums[8] += latency
            sums[_LATENCY_AT + bisect.bisect_left(LATENCY_BUCKETS_MS, latency)] += 1
            if latency > sums[_MAX_AT]:
                sums[_MAX_AT] = latency
    return groups


def add_into(total: dict[str, Any], counters: dict[str, Any]) -> None:
    """Combine one rollup row's counters into another's: sums add, maxima take the larger."""
    for name, amount in counters.items():
        total[name] = max(total[name], amount) if name in MAXIMA else total[name] + amount


def percentile(histogram: list[int], q: float, maximum: float | None = None) -> float | None:
    """Estimate the q-quantile (ms) from bucket counts, interpolating inside the bucket.
    `maximum`, the slowest latency seen (None or 0: not known), caps the bucket it falls
    in, so the estimate never exceeds it."""
    total = sum(histogram)
    if total == 0:
        return None
    target = q * total
    seen = 0
    lower = 0.0
    for index, count in enumerate(histogram):
        upper = LATENCY_BUCKETS_MS[index] if index < len(LATENCY_BUCKETS_MS) else lower * 2 or 1.0
        if maximum:
            upper = min(upper, maximum) if index < len(LATENCY_BUCKETS_MS) else maximum
            lower = min(lower, upper)
        if count and seen + count >= target:
            return lower + (upper - lower) * ((target - seen) / count)
        seen += count
        lower = float(upper)
    return lower
