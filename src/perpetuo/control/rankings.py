"""Model rankings from real usage across every workspace, as aggregates only.

Read from the hourly usage rollups (dimension `alias`), summed by the database over all
workspaces: requests, tokens, the latency median (from the rollups' histograms) and the
error rate over a window. Only the platform's own models are ranked (a workspace's model
names are its own business), and a model only once enough distinct workspaces used it in
the window that no single workspace's traffic can be read from it. No workspace, key,
person or cost appears. An operator turns this on (`public.rankings`); answers are kept
for a minute, so that a public page cannot make the database sum on every visit.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from perpetuo.metering.rollup import percentile
from perpetuo.store.database import Database
from perpetuo.store.schema import LATENCY_COLUMNS, usage_rollups
from perpetuo.store.timeutil import iso, utcnow

Json = dict[str, Any]
CACHE_SECONDS = 60.0
_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", *LATENCY_COLUMNS)


class Rankings:
    """Rankings read from `db`, each answer kept for CACHE_SECONDS."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[tuple[Any, ...], tuple[float, Json]] = {}

    async def models(self, models: Iterable[str], *, days: int, min_workspaces: int) -> Json:
        """The ranking of `models` (the platform's aliases) by tokens over the last `days`."""
        names = frozenset(models)
        key = (names, days, min_workspaces)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        result = await _rank(self.db, names, days, min_workspaces)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, result)
        return result


async def _rank(db: Database, names: frozenset[str], days: int, min_workspaces: int) -> Json:
    until = utcnow()
    since = (until - dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    rollups = usage_rollups.c
    workspaces = func.count(func.distinct(rollups.workspace_id))
    sums = [func.coalesce(func.sum(rollups[name]), 0).label(name) for name in _SUMS]
    sums.append(func.coalesce(func.max(rollups.latency_max_ms), 0).label("latency_max_ms"))
    rows = []
    if names:
        async with db.connect() as conn:
            rows = (
                await conn.execute(
                    select(rollups.value, *sums)
                    .where(
                        rollups.dim == "alias",
                        rollups.value.in_(names),
                        rollups.bucket >= since,
                    )
                    .group_by(rollups.value)
                    .having(workspaces >= min_workspaces)
                )
            ).all()
    entries = [_entry(row) for row in rows if int(row.requests) > 0]
    entries.sort(key=lambda e: (-e["total_tokens"], -e["requests"], e["model"]))
    total = sum(e["total_tokens"] for e in entries) or 1
    data = [
        {"rank": rank, **entry, "token_share": round(entry["total_tokens"] / total, 4)}
        for rank, entry in enumerate(entries, 1)
    ]
    return {
        "object": "list",
        "window_days": days,
        "since": iso(since),
        "until": iso(until),
        "data": data,
    }


def _entry(row: Any) -> Json:
    requests = int(row.requests)
    prompt, completion = int(row.prompt_tokens), int(row.completion_tokens)
    histogram = [int(getattr(row, c)) for c in LATENCY_COLUMNS]
    p50 = percentile(histogram, 0.5, float(row.latency_max_ms))
    return {
        "model": row.value,
        "requests": requests,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "latency_p50_ms": round(p50, 1) if p50 is not None else None,
        "error_rate": round(int(row.errors) / requests, 4),
    }
