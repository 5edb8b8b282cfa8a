"""/api/workspaces/{workspace_id}/usage and /logs: analytics, log search, CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import WORKSPACE, json_errors
from perpetuo.control import analytics, money

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}", tags=["Usage and logs"], responses=WORKSPACE
)

Since = Annotated[dt.datetime | None, Query(description="Start (ISO 8601; default: 7 days ago)")]
Until = Annotated[dt.datetime | None, Query(description="End, exclusive (default: now)")]


@router.get("/usage", summary="Usage over time: requests, tokens, cost, errors, latency")
async def usage(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    since: Since = None,
    until: Until = None,
    granularity: analytics.Granularity = "hour",
    group_by: analytics.GroupBy | None = None,
) -> dict[str, Any]:
    rows = await analytics.usage_series(
        plane,
        actor,
        workspace_id,
        since=since,
        until=until,
        granularity=granularity,
        group_by=group_by,
    )
    return await _in_currency(plane, workspace_id, rows)


async def _in_currency(plane: Any, workspace_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows with their cost in the workspace's currency, and the rate used with its date."""
    currency = await money.workspace_currency(plane, workspace_id)
    return {
        "data": money.with_costs(rows, currency),
        "currency": currency.view(),
        "next_cursor": None,
        "has_more": False,
    }


@router.get(
    "/usage/breakdown",
    summary="Totals per API (endpoint), model, provider, key, user, team or tag",
)
async def breakdown(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    group_by: analytics.GroupBy,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    rows = await analytics.usage_breakdown(
        plane, actor, workspace_id, since=since, until=until, group_by=group_by
    )
    return await _in_currency(plane, workspace_id, rows)


def _filters(
    endpoint: Annotated[
        str | None,
        Query(description="The API the client spoke: chat, responses, messages, embeddings"),
    ] = None,
    key_id: str | None = None,
    user_id: str | None = None,
    team_id: str | None = None,
    alias: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    error_code: str | None = None,
    cache: str | None = None,
    status: str | None = None,
    stream: bool | None = None,
    fallback: bool | None = None,
    min_latency_ms: float | None = None,
) -> dict[str, Any]:
    parsed_status: Any = status
    if status is not None and status.isdigit():
        parsed_status = int(status)
    elif status not in (None, "ok", "error"):
        from perpetuo.control.errors import invalid

        raise invalid("`status` is ok, error, or an HTTP status code.", "status")
    return {
        "endpoint": endpoint,
        "key_id": key_id,
        "user_id": user_id,
        "team_id": team_id,
        "alias": alias,
        "provider": provider,
        "model": model,
        "error_code": error_code,
        "cache": cache,
        "status": parsed_status,
        "stream": stream,
        "fallback": fallback,
        "min_latency_ms": min_latency_ms,
    }


# The same query filters for searching and for exporting.
LogFilters = Annotated[dict[str, Any], Depends(_filters)]


@router.get("/logs", summary="Search request logs (newest first)")
async def search_logs(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    filters: LogFilters,
    since: Since = None,
    until: Until = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await analytics.search_logs(
        plane,
        actor,
        workspace_id,
        since=since,
        until=until,
        filters=filters,
        limit=limit,
        cursor=cursor,
    )
    return page(result, analytics.log_view)


class CSVResponse(StreamingResponse):
    media_type = "text/csv"  # also what the schema documents for the 200 answer


@router.get(
    "/logs/export.csv",
    summary="Export matching request logs as CSV",
    response_class=CSVResponse,
    responses=json_errors(*WORKSPACE),
)
async def export_logs(
    workspace_id: str,
    actor: ActorDep,
    plane: PlaneDep,
    filters: LogFilters,
    since: Since = None,
    until: Until = None,
) -> CSVResponse:
    rows = await analytics.export_logs(
        plane, actor, workspace_id, since=since, until=until, filters=filters
    )
    currency = await money.workspace_currency(plane, workspace_id)
    name = f"perpetuo-logs-{workspace_id}.csv"
    return CSVResponse(
        csv_chunks(rows, currency),
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.get("/logs/{request_id}", summary="One request: its decision trace and details")
async def get_log(
    workspace_id: str, request_id: str, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await analytics.get_log(plane, actor, workspace_id, request_id))


CSV_COLUMNS = (
    "id",
    "created_at",
    "key_id",
    "user_id",
    "team_id",
    "endpoint",
    "alias",
    "provider",
    "model",
    "status",
    "error_code",
    "stream",
    "fallback",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "cache",
    "tags",
)


async def csv_chunks(
    rows: AsyncIterator[dict[str, Any]], currency: money.Currency = money.USD
) -> AsyncIterator[str]:
    """Request-log rows as CSV (CSV_COLUMNS, then CURRENCY_COLUMNS), in pieces of 500 rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow((*CSV_COLUMNS, *money.CURRENCY_COLUMNS))
    rate = currency.view()
    count = 0
    async for row in rows:
        writer.writerow(
            [
                *(";".join(row[c]) if c == "tags" else row[c] for c in CSV_COLUMNS),
                currency.from_usd(row["cost_usd"]),
                currency.code,
                rate["per_usd"],
                rate["rate_date"] or "",
            ]
        )
        count += 1
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
