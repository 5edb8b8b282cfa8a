"""Request logs: a filtered, paginated table, one request's detail, and CSV export."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from perpetuo.api.admin.routes.usage import csv_chunks
from perpetuo.control import analytics
from perpetuo.control.errors import invalid
from perpetuo.control.money import currency_of
from perpetuo.store.schema import usage_rollups
from perpetuo.ui import log_search
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.formatting import API_NAMES
from perpetuo.ui.lookups import key_names, provider_names
from perpetuo.ui.timerange import TimeRange, parse_range

router = APIRouter(prefix="/ui/w/{workspace_id}/logs")
PAGE_SIZE = 50
TEXT_FILTERS = ("endpoint", "key_id", "alias", "provider", "model", "error_code", "cache")
FLAG_FILTERS = ("stream", "fallback")


def _filters(request: Request) -> tuple[dict[str, Any], dict[str, str]]:
    """Search filters for the service, and the query parameters that produced them."""
    params = request.query_params
    chosen = {
        name: params[name] for name in (*TEXT_FILTERS, *FLAG_FILTERS, "status") if params.get(name)
    }
    filters: dict[str, Any] = {name: chosen.get(name) for name in TEXT_FILTERS}
    for name in FLAG_FILTERS:
        filters[name] = None if name not in chosen else chosen[name] == "yes"
    status = chosen.get("status")
    if status is not None and not status.isdigit() and status not in ("ok", "error"):
        raise invalid("`status` is ok, error, or an HTTP status code.", "status")
    filters["status"] = int(status) if status and status.isdigit() else status
    return filters, chosen


async def _choices(page: WorkspacePage, window: TimeRange) -> dict[str, list[str]]:
    """Values seen in the range, for the filter menus (from the hourly rollups: cheap)."""
    query = (
        select(usage_rollups.c.dim, usage_rollups.c.value)
        .distinct()
        .where(
            usage_rollups.c.workspace_id == page.id,
            usage_rollups.c.bucket >= window.since.replace(minute=0, second=0, microsecond=0),
            usage_rollups.c.dim.in_(("alias", "provider")),
        )
    )
    found: dict[str, list[str]] = {"alias": [], "provider": []}
    async with page.plane.db.connect() as conn:
        for row in (await conn.execute(query)).all():
            found[row.dim].append(row.value)
    return {dim: sorted(values) for dim, values in found.items()}


@router.get("")
async def logs_page(
    page: PageDep,
    range: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
) -> Response:
    window = parse_range(range, since, until, default="24h")
    filters, chosen = _filters(page.request)
    result = await log_search.search(page, window, filters, cursor, PAGE_SIZE)
    query = {**window.query, **chosen}
    return show(
        page,
        "logs.html",
        active="logs",
        window=window,
        chosen=chosen,
        logs=[analytics.log_view(row) for row in result.rows],
        next_url=f"?{urlencode({**query, 'cursor': result.next_cursor})}"
        if result.next_cursor
        else None,
        first_url=f"?{urlencode(query)}" if cursor else None,
        searched_to=result.searched_to,
        export_url=page.url("logs/export.csv") + f"?{urlencode(query)}",
        range_query=urlencode(chosen),
        choices=await _choices(page, window),
        keys=await key_names(page),
        providers=await provider_names(page),
        apis=list(API_NAMES.items()),
    )


@router.get("/export.csv")
async def export(
    page: PageDep, range: str | None = None, since: str | None = None, until: str | None = None
) -> Response:
    window = parse_range(range, since, until, default="24h")
    filters, _ = _filters(page.request)
    rows = await analytics.export_logs(
        page.plane, page.actor, page.id, since=window.since, until=window.until, filters=filters
    )
    name = f"perpetuo-logs-{page.id}.csv"
    return StreamingResponse(
        csv_chunks(rows, currency_of(page.plane.currency, page.settings.currency)),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{request_id}")
async def detail(page: PageDep, request_id: str) -> Response:
    entry = await analytics.get_log(page.plane, page.actor, page.id, request_id)
    names = await key_names(page)
    providers = await provider_names(page)
    return show(
        page,
        "log_detail.html",
        active="logs",
        entry=entry,
        key_name=names.get(entry["key_id"] or ""),
        provider=providers.get(entry["provider"] or "", entry["provider"]),
    )
