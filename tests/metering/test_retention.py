"""Request-log retention per workspace setting (30 days unless the workspace says otherwise)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from perpetuo.metering.record import RequestRecord
from perpetuo.metering.retention import prune_request_logs
from perpetuo.metering.writer import write_batch
from perpetuo.store.database import Database
from perpetuo.store.schema import request_logs, usage_rollups, workspaces
from tests.support.people import make_workspace
from tests.support.plane import make_plane


async def test_prune_respects_each_workspaces_retention(store_url):
    plane = await make_plane(store_url)
    db: Database = plane.db
    try:
        short = await make_workspace(plane, {})
        async with db.begin() as conn:
            await conn.execute(
                update(workspaces)
                .where(workspaces.c.id == short)
                .values(settings={"log_retention_days": 2})
            )
        now = dt.datetime.now(dt.UTC)
        records = []
        for workspace in ("ws_default", short):
            for age_days in (1, 5, 40):
                stamp = (now - dt.timedelta(days=age_days)).timestamp()
                records.append(
                    RequestRecord(
                        id=f"{workspace}-{age_days}",
                        workspace_id=workspace,
                        created_at=stamp,
                        endpoint="chat",
                        status=200,
                    )
                )
        await write_batch(db, records)
        removed = await prune_request_logs(db, now)
        async with db.connect() as conn:
            kept = set((await conn.execute(select(request_logs.c.id))).scalars())
            rollup_requests = sum(
                (
                    await conn.execute(
                        select(usage_rollups.c.requests).where(usage_rollups.c.dim == "all")
                    )
                ).scalars()
            )
        assert kept == {"ws_default-1", "ws_default-5", f"{short}-1"}
        assert removed == 3
        assert rollup_requests == 6  # usage history stays
    finally:
        await db.dispose()
