"""The hourly retention pass asks the request log for rows past their retention; most hours
there are none or few, and that answer must come from the time index, not from reading
the whole log (kept for a month by default)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from perpetuo.metering.retention import DEFAULT_DAYS, expired
from perpetuo.store.bulk import partitions
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from perpetuo.store.timeutil import utcnow
from tests.support.explain import query_plan


async def test_the_default_retention_pass_reads_by_the_time_index(store_url):
    db = Database(store_url)
    try:
        await upgrade(db)
        cutoff = utcnow() - dt.timedelta(days=DEFAULT_DAYS)
        old_day = (cutoff - dt.timedelta(days=1)).date()
        # On PostgreSQL, a day's partition is where its rows are, and has its own index.
        index = (
            "ix_request_logs_time"
            if db.is_sqlite
            else f"request_logs_p{old_day:%Y%m%d}_created_at_idx"
        )
        async with db.connect() as conn:
            if not db.is_sqlite:
                await conn.execute(text(partitions.create_sql(old_day)))
            # The pass over every workspace without a retention of its own.
            plan = await query_plan(conn, expired(cutoff, exclude={"ws_custom"}).limit(5000))
        assert any(index in line for line in plan), plan
    finally:
        await db.dispose()
