"""Request-log search with a bounded cost, for the logs page.

Without filters the newest rows come straight off the (workspace, time) index. A filter that
no index serves (a status, a flag, a rare alias) could otherwise scan a month of rows to find
nothing, so a filtered search:

1. asks the hourly rollups which hours can hold a match at all (the hours in which the
   filtered key, alias, provider, model or user was seen; with errors when failures are
   asked for), which answers "nothing matches" at once and skips empty stretches;
2. reads those hours newest first in slices that grow while they are quick and shrink when
   they are slow, until the page is full or about TIME_BUDGET has been spent; then it stops
   and offers to search on from where it stopped (an ordinary keyset cursor).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from perpetuo.control import analytics
from perpetuo.store.pagination import decode_cursor, encode_cursor, to_page
from perpetuo.store.schema import usage_rollups
from perpetuo.ui.context import WorkspacePage
from perpetuo.ui.timerange import TimeRange

TIME_BUDGET = 0.1  # seconds of slices before the page answers with what it found
HOUR = dt.timedelta(hours=1)
DIMENSIONS = {"key_id": "key", "user_id": "user", "alias": "alias", "provider": "provider",
              "model": "model"}  # fmt: skip


@dataclass
class Found:
    rows: list[Any]
    next_cursor: str | None
    searched_to: dt.datetime | None = None  # set when the search stopped before the range's start


def _hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def candidate_hours(
    page: WorkspacePage, since: dt.datetime, until: dt.datetime, filters: dict[str, Any]
) -> list[dt.datetime]:
    """Hours of [since, until) whose rollups say a matching row may be there, newest first."""
    rollups = usage_rollups.c
    base = select(rollups.bucket).where(
        rollups.workspace_id == page.id, rollups.bucket >= _hour(since), rollups.bucket < until
    )
    status = filters.get("status")
    wants_errors = status == "error" or (isinstance(status, int) and status >= 400)
    wants_ok = status == "ok" or (isinstance(status, int) and status < 400)
    queries = [base.where(rollups.dim == "all")]
    for name, dim in DIMENSIONS.items():
        if filters.get(name) is not None:
            queries.append(base.where(rollups.dim == dim, rollups.value == filters[name]))
    if wants_errors:
        queries = [q.where(rollups.errors > 0) for q in queries]
    if wants_ok:
        queries = [q.where(rollups.requests > rollups.errors) for q in queries]
    if filters.get("cache") in ("hit", "semantic-hit"):
        queries = [q.where(rollups.cache_hits > 0) for q in queries]
    hours: set[dt.datetime] | None = None
    async with page.plane.db.connect() as conn:
        for query in queries:
            found = set((await conn.execute(query)).scalars())
            hours = found if hours is None else hours & found
    return sorted(hours or (), reverse=True)


def _slices(hours: list[dt.datetime], size: int) -> tuple[dt.datetime, dt.datetime, int]:
    """The newest run of consecutive hours, at most `size` long: (start, end, hours used)."""
    end = hours[0] + HOUR
    used = 1
    while used < len(hours) and used < size and hours[used] == hours[used - 1] - HOUR:
        used += 1
    return hours[used - 1], end, used


async def search(
    page: WorkspacePage, window: TimeRange, filters: dict[str, Any], cursor: str | None, limit: int
) -> Found:
    if all(value is None for value in filters.values()):
        result = await analytics.search_logs(
            page.plane, page.actor, page.id, since=window.since, until=window.until,
            filters=filters, limit=limit, cursor=cursor,
        )  # fmt: skip
        return Found(result.rows, result.next_cursor)
    until = window.until
    if cursor:
        # A row's cursor may share its time with older rows; a stop's boundary (no id) not.
        stamp, last_id = decode_cursor(cursor)
        until = min(until, stamp + dt.timedelta(microseconds=1) if last_id else stamp)
    hours = [h for h in await candidate_hours(page, window.since, until, filters) if h < until]
    rows: list[Any] = []
    size, deadline, first = 1, time.monotonic() + TIME_BUDGET, True
    while hours and len(rows) <= limit:
        if not first and time.monotonic() > deadline:  # every call makes some progress
            return Found(rows, encode_cursor(hours[0] + HOUR, ""), hours[0] + HOUR)
        start, end, used = _slices(hours, size)
        started = time.monotonic()
        result = await analytics.search_logs(
            page.plane, page.actor, page.id, since=max(start, window.since), until=min(end, until),
            filters=filters, limit=limit + 1 - len(rows), cursor=cursor,
        )  # fmt: skip
        rows.extend(result.rows)  # one row more than the page holds tells there are more
        hours, first = hours[used:], False
        quick = time.monotonic() - started < TIME_BUDGET / 8
        size = size * 2 if quick else max(1, size // 2)
    found = to_page(rows, limit)
    return Found(found.rows, found.next_cursor)
