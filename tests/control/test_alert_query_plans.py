"""Platform alert rules are evaluated every minute over every workspace's traffic: each of
their questions must be answered by an index, or its cost grows with the request log (kept
for months) and the rollups."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from perpetuo.control.alerts.conditions import (
    spend_by_hour,
    traffic_by_deployment,
    traffic_window,
)
from perpetuo.store.bulk import partitions
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from perpetuo.store.timeutil import utcnow
from tests.support.explain import query_plan


async def test_platform_rules_read_the_log_and_the_rollups_by_index(store_url):
    db = Database(store_url)
    try:
        await upgrade(db)
        now = utcnow()
        hour = now.replace(minute=0, second=0, microsecond=0)
        # Each by an index its condition leads (on PostgreSQL, the request log's is the
        # index of today's partition); an index walked whole, with the condition as a filter,
        # would read every row too.
        log_index = (
            "ix_request_logs_time" if db.is_sqlite else f"request_logs_p{now:%Y%m%d}_created_at_idx"
        )
        questions = {
            log_index: traffic_by_deployment(
                traffic_window(None, now - dt.timedelta(minutes=5), now)
            ),
            "ix_usage_rollups_dim_bucket": spend_by_hour(
                None, [hour - dt.timedelta(days=d) for d in range(8)]
            ),
        }
        async with db.connect() as conn:
            if not db.is_sqlite:
                # The log's partition for today is made by its first write; made here instead.
                await conn.execute(text(partitions.create_sql(now.date())))
            for index, question in questions.items():
                plan = await query_plan(conn, question)
                assert any(index in line for line in plan), plan
    finally:
        await db.dispose()
