"""Usage and cost: charts over time (the workspace's, or one team's), breakdowns by API
(dialect), model, provider, key, user and team, the workspace's budget and credit standing,
and the charts' figures as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from perpetuo.control import analytics
from perpetuo.control.money import CURRENCY_COLUMNS, USD, Currency
from perpetuo.ui.budget import budget_status
from perpetuo.ui.charts import Series, axis_usd, bar_chart, line_chart, share_bar
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.formatting import API_NAMES, count, ms, page_currency
from perpetuo.ui.lookups import key_names, provider_names, team_names, user_emails
from perpetuo.ui.render import markup
from perpetuo.ui.timerange import TimeRange, parse_range

router = APIRouter(prefix="/ui/w/{workspace_id}/usage")
BREAKDOWNS = (
    ("endpoint", "API", "By API"),
    ("alias", "Model", "By model"),
    ("provider", "Provider", "By provider"),
    ("key", "API key", "By API key"),
    ("user", "User", "By user"),
    ("team", "Team", "By team"),
)


def buckets(window: TimeRange) -> list[dt.datetime]:
    """Every bucket of the range, so quiet hours show as zero rather than vanish."""
    step = dt.timedelta(hours=1) if window.granularity == "hour" else dt.timedelta(days=1)
    start = window.since.replace(minute=0, second=0, microsecond=0)
    if window.granularity == "day":
        start = start.replace(hour=0)
    out = []
    while start < window.until and len(out) < 1000:
        out.append(start)
        start += step
    return out


def charts(window: TimeRange, rows: list[dict[str, Any]]) -> dict[str, Any]:
    labels = buckets(window)
    by_bucket = {row["bucket"]: row for row in rows}
    keyed = [by_bucket.get(label.isoformat().replace("+00:00", "Z")) for label in labels]

    def column(name: str) -> list[float]:
        return [float(row[name]) if row else 0.0 for row in keyed]

    def optional(name: str) -> list[float | None]:
        return [row[name] if row and row[name] is not None else None for row in keyed]

    hourly = window.granularity == "hour"
    return {
        "requests": markup(
            bar_chart("Requests", labels, column("requests"), hourly=hourly, fmt=count, whole=True)
        ),
        "tokens": markup(
            line_chart(
                "Tokens",
                labels,
                [
                    Series("Prompt", column("prompt_tokens")),
                    Series("Completion", column("completion_tokens")),
                ],
                hourly=hourly,
                fmt=count,
                whole=True,
            )
        ),
        "cost": markup(
            bar_chart(
                "Cost (USD)",
                labels,
                column("cost_usd"),
                hourly=hourly,
                fmt=axis_usd(column("cost_usd")),
                series=2,
            )
        ),
        "errors": markup(
            bar_chart(
                "Errors", labels, column("errors"), hourly=hourly, fmt=count, whole=True, series=3
            )
        ),
        "latency": markup(
            line_chart(
                "Latency",
                labels,
                [
                    Series("p50", optional("latency_p50_ms")),
                    Series("p95", optional("latency_p95_ms")),
                ],
                hourly=hourly,
                fmt=ms,
            )
        ),
    }


# The usage CSV: one row per hour or day of the range (as the charts), zeros included.
CSV_COLUMNS = (
    "bucket",
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cost_usd",
    "cache_hits",
    "saved_usd",
    "latency_avg_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)


def usage_csv(window: TimeRange, rows: list[dict[str, Any]], currency: Currency = USD) -> str:
    """CSV_COLUMNS, then the cost in the workspace's currency with the rate and its date."""
    by_bucket = {row["bucket"]: row for row in rows}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow((*CSV_COLUMNS, *CURRENCY_COLUMNS))
    rate = currency.view()
    for label in buckets(window):
        stamp = label.isoformat().replace("+00:00", "Z")
        row = by_bucket.get(stamp) or {}
        writer.writerow(
            [stamp]
            + [
                "" if row.get(name) is None and name.startswith("latency") else row.get(name, 0)
                for name in CSV_COLUMNS[1:]
            ]
            + [currency.from_usd(row.get("cost_usd", 0)), currency.code, rate["per_usd"]]
            + [rate["rate_date"] or ""]
        )
    return buffer.getvalue()


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    requests = sum(r["requests"] for r in rows)
    latency = sum((r["latency_avg_ms"] or 0) * r["requests"] for r in rows)
    return {
        "requests": requests,
        "errors": sum(r["errors"] for r in rows),
        "tokens": sum(r["total_tokens"] for r in rows),
        "cost_usd": sum(r["cost_usd"] for r in rows),
        "error_rate": sum(r["errors"] for r in rows) / requests if requests else None,
        "latency_avg_ms": latency / requests if requests else None,
    }


async def _names(page: WorkspacePage) -> dict[str, dict[str, str]]:
    return {
        "endpoint": API_NAMES,
        "key": await key_names(page),
        "user": await user_emails(page),
        "provider": await provider_names(page),
        "team": await team_names(page),
    }


async def _series(
    page: WorkspacePage, window: TimeRange, team: str | None = None
) -> list[dict[str, Any]]:
    """The workspace's figures per bucket, or one team's (its rows of the team grouping)."""
    rows = await analytics.usage_series(
        page.plane,
        page.actor,
        page.id,
        since=window.since,
        until=window.until,
        granularity=window.granularity,
        group_by="team" if team else None,
    )
    return [row for row in rows if row["group"] == team] if team else rows


@router.get("")
async def usage_page(
    page: PageDep,
    range: str | None = None,
    since: str | None = None,
    until: str | None = None,
    team: str | None = None,
) -> Response:
    window = parse_range(range, since, until, default="7d")
    names = await _names(page)
    team = team if team in names["team"] else None  # unknown (another workspace's): all
    rows = await _series(page, window, team)
    query = {**window.query, **({"team": team} if team else {})}
    tables = []
    for dim, title, heading in BREAKDOWNS:
        entries = await analytics.usage_breakdown(
            page.plane, page.actor, page.id, since=window.since, until=window.until, group_by=dim
        )
        biggest = max((e["cost_usd"] for e in entries), default=0.0) or 1.0
        for entry in entries:
            entry["label"] = names.get(dim, {}).get(entry["group"], entry["group"])
            entry["share"] = markup(share_bar(entry["cost_usd"] / biggest))
        tables.append({"dim": dim, "title": title, "heading": heading, "entries": entries[:20]})
    return show(
        page,
        "usage.html",
        active="usage",
        window=window,
        charts=charts(window, rows),
        totals=totals(rows),
        tables=tables,
        budget=await budget_status(page),
        teams=sorted(names["team"].items(), key=lambda item: item[1].lower()),
        team=team,
        usage_csv_url=page.url("usage/export.csv") + f"?{urlencode(query)}",
        logs_csv_url=page.url("logs/export.csv") + f"?{urlencode(window.query)}",
    )


@router.get("/export.csv")
async def export(
    page: PageDep,
    range: str | None = None,
    since: str | None = None,
    until: str | None = None,
    team: str | None = None,
) -> Response:
    """The figures the page charts, for the same range (and team), one row per hour or day."""
    window = parse_range(range, since, until, default="7d")
    team = team if team in await team_names(page) else None
    body = usage_csv(window, await _series(page, window, team), page_currency(page))
    name = f"perpetuo-usage-{page.id}-{window.since:%Y%m%d}-{window.until:%Y%m%d}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
