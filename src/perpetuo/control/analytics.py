"""Usage analytics and request-log search, workspace by workspace.

Usage comes from the hourly rollups (kept current by the request-log writer), so a query
reads one row per hour and group whatever the traffic; percentiles come from the latency
histogram each rollup row carries. Log search reads the request log through its
(workspace, time) index, newest first, with keyset pagination.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, Literal

from sqlalchemy import Select, and_, func, or_, select

from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.errors import invalid, not_found
from perpetuo.control.plane import ControlPlane
from perpetuo.metering.compact import expand_trace
from perpetuo.metering.rollup import COUNTERS, add_into, percentile
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.schema import LATENCY_COLUMNS, request_logs, usage_rollups
from perpetuo.store.timeutil import iso, utcnow

# endpoint: the API (dialect) the client spoke: chat, responses, messages or embeddings.
GroupBy = Literal["endpoint", "alias", "provider", "model", "key", "user", "team", "tag"]
Granularity = Literal["hour", "day"]
MAX_RANGE = dt.timedelta(days=400)


def _range(since: dt.datetime | None, until: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    until = _utc(until) if until else utcnow()
    since = _utc(since) if since else until - dt.timedelta(days=7)
    if since >= until:
        raise invalid("`since` must be before `until`.", "since")
    if until - since > MAX_RANGE:
        raise invalid("The range can span at most 400 days.", "since")
    return since, until


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _bucket(hour: dt.datetime, granularity: Granularity) -> dt.datetime:
    return hour.replace(hour=0) if granularity == "day" else hour


def _row_view(
    bucket: dt.datetime | None, group: str | None, sums: dict[str, Any]
) -> dict[str, Any]:
    histogram = [int(sums[c]) for c in LATENCY_COLUMNS]
    slowest = float(sums["latency_max_ms"])
    requests = int(sums["requests"])
    return {
        "bucket": iso(bucket),
        "group": group,
        "requests": requests,
        "errors": int(sums["errors"]),
        "prompt_tokens": int(sums["prompt_tokens"]),
        "completion_tokens": int(sums["completion_tokens"]),
        "cached_tokens": int(sums["cached_tokens"]),
        "total_tokens": int(sums["prompt_tokens"]) + int(sums["completion_tokens"]),
        "cost_usd": int(sums["cost_micros"]) / 1_000_000,
        "cache_hits": int(sums["cache_hits"]),
        "saved_usd": int(sums["saved_cost_micros"]) / 1_000_000,
        "latency_avg_ms": round(sums["latency_sum_ms"] / requests, 2) if requests else None,
        "latency_p50_ms": _rounded(percentile(histogram, 0.50, slowest)),
        "latency_p95_ms": _rounded(percentile(histogram, 0.95, slowest)),
        "latency_p99_ms": _rounded(percentile(histogram, 0.99, slowest)),
    }


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


async def usage_series(
    plane: ControlPlane,
    actor: Actor,
    workspace_id: str,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    granularity: Granularity = "hour",
    group_by: GroupBy | None = None,
) -> list[dict[str, Any]]:
    """Counters per time bucket (and per group when `group_by` is given), oldest first."""
    start, end = _range(since, until)
    dim = group_by or "all"
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "usage.read")
        rows = (
            await conn.execute(
                select(usage_rollups).where(
                    usage_rollups.c.workspace_id == workspace_id,
                    usage_rollups.c.dim == dim,
                    usage_rollups.c.bucket >= start.replace(minute=0, second=0, microsecond=0),
                    usage_rollups.c.bucket < end,
                )
            )
        ).all()
    merged: dict[tuple[dt.datetime, str], dict[str, Any]] = {}
    for row in rows:
        key = (_bucket(row.bucket, granularity), row.value)
        sums = merged.setdefault(key, dict.fromkeys(COUNTERS, 0))
        add_into(sums, {name: getattr(row, name) for name in COUNTERS})
    return [
        _row_view(bucket, value if group_by else None, sums)
        for (bucket, value), sums in sorted(merged.items(), key=lambda item: item[0])
    ]


async def usage_breakdown(
    plane: ControlPlane,
    actor: Actor,
    workspace_id: str,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    group_by: GroupBy,
) -> list[dict[str, Any]]:
    """Totals per group over the range, largest cost first. Summed by the database: a
    busy workspace has tens of thousands of rollup rows a month per dimension."""
    start, end = _range(since, until)
    names = (*_BREAKDOWN_SUMS, "cost_micros", "saved_cost_micros")
    sums = [func.coalesce(func.sum(usage_rollups.c[name]), 0).label(name) for name in names]
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "usage.read")
        rows = (
            await conn.execute(
                select(usage_rollups.c.value, *sums)
                .where(
                    usage_rollups.c.workspace_id == workspace_id,
                    usage_rollups.c.dim == group_by,
                    usage_rollups.c.bucket >= start.replace(minute=0, second=0, microsecond=0),
                    usage_rollups.c.bucket < end,
                )
                .group_by(usage_rollups.c.value)
            )
        ).all()
    totals = [
        {
            "group": row.value,
            **{name: int(getattr(row, name)) for name in _BREAKDOWN_SUMS},
            "cost_usd": int(row.cost_micros) / 1_000_000,
            "saved_usd": int(row.saved_cost_micros) / 1_000_000,
        }
        for row in rows
    ]
    return sorted(totals, key=lambda e: (-e["cost_usd"], -e["requests"], e["group"] or ""))


_BREAKDOWN_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cache_hits")


# -- request logs ------------------------------------------------------------------------------

LOG_FILTERS = (
    *("endpoint", "key_id", "user_id", "team_id", "alias", "provider", "model", "error_code"),
    "cache",
)


def _log_query(
    workspace_id: str, start: dt.datetime, end: dt.datetime, filters: dict[str, Any]
) -> Select[Any]:
    query = select(request_logs).where(
        request_logs.c.workspace_id == workspace_id,
        request_logs.c.created_at >= start,
        request_logs.c.created_at < end,
    )
    for name in LOG_FILTERS:
        if (value := filters.get(name)) is not None:
            query = query.where(request_logs.c[name] == value)
    status = filters.get("status")
    if status == "ok":
        query = query.where(request_logs.c.status < 400, request_logs.c.error_code.is_(None))
    elif status == "error":
        query = query.where(
            or_(request_logs.c.status >= 400, request_logs.c.error_code.is_not(None))
        )
    elif isinstance(status, int):
        query = query.where(request_logs.c.status == status)
    if (stream := filters.get("stream")) is not None:
        query = query.where(request_logs.c.stream == stream)
    if (fallback := filters.get("fallback")) is not None:
        query = query.where(request_logs.c.fallback == fallback)
    if (min_latency := filters.get("min_latency_ms")) is not None:
        query = query.where(and_(request_logs.c.latency_ms >= min_latency))
    return query


BODY_FIELDS = ("request_body", "response_body")  # see pipeline/bodies.py


def log_view(row: Any, *, full: bool = False) -> dict[str, Any]:
    view = {
        "id": row.id,
        "object": "request_log",
        "created_at": iso(row.created_at),
        "key_id": row.key_id,
        "user_id": row.user_id,
        "team_id": row.team_id,
        "endpoint": row.endpoint,
        "alias": row.alias,
        "provider": row.provider,
        "model": row.model,
        "strategy": row.strategy,
        "attempts": row.attempts,
        "fallback": row.fallback,
        "stream": row.stream,
        "status": row.status,
        "error_code": row.error_code,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "usage_estimated": row.usage_estimated,
        "unit": row.unit,
        "quantity": row.quantity,
        "cost_usd": row.cost_micros / 1_000_000,
        "latency_ms": row.latency_ms,
        "ttft_ms": row.ttft_ms,
        "cache": row.cache,
        "saved_usd": row.saved_cost_micros / 1_000_000,
        "tags": row.tags or [],
    }
    if full:
        view.update(
            client_ip=row.client_ip,
            user_agent=row.user_agent,
            trace=expand_trace(row.trace, row),
            detail=row.detail,
        )
    return view


async def search_logs(
    plane: ControlPlane,
    actor: Actor,
    workspace_id: str,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    filters: dict[str, Any],
    limit: int,
    cursor: str | None,
) -> Page:
    start, end = _range(since, until)
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "usage.read")
        query = newest_first(
            _log_query(workspace_id, start, end, filters), request_logs, cursor, limit
        )
        return to_page((await conn.execute(query)).all(), limit)


async def get_log(
    plane: ControlPlane, actor: Actor, workspace_id: str, request_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        grant = await require(conn, actor, workspace_id, "usage.read")
        row = (
            await conn.execute(
                select(request_logs).where(
                    request_logs.c.workspace_id == workspace_id, request_logs.c.id == request_id
                )
            )
        ).first()
    if row is None:
        raise not_found("Request log")
    view = log_view(row, full=True)
    if not grant.allows("logs.detail") and view["detail"]:  # prompts and answers
        view["detail"] = {k: v for k, v in view["detail"].items() if k not in BODY_FIELDS}
    return view


async def export_logs(
    plane: ControlPlane,
    actor: Actor,
    workspace_id: str,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    filters: dict[str, Any],
    max_rows: int = 1_000_000,
) -> AsyncIterator[dict[str, Any]]:
    """Every matching log row, newest first, read page by page (for CSV export). Access is
    checked here, before anything is streamed."""
    start, end = _range(since, until)
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "usage.read")
    return _iterate_logs(plane, workspace_id, start, end, filters, max_rows)


async def _iterate_logs(
    plane: ControlPlane,
    workspace_id: str,
    start: dt.datetime,
    end: dt.datetime,
    filters: dict[str, Any],
    max_rows: int,
) -> AsyncIterator[dict[str, Any]]:
    cursor: str | None = None
    sent = 0
    while sent < max_rows:
        async with plane.db.connect() as conn:
            query = newest_first(
                _log_query(workspace_id, start, end, filters), request_logs, cursor, 1000
            )
            page = to_page((await conn.execute(query)).all(), 1000)
        for row in page.rows:
            yield log_view(row)
            sent += 1
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
