"""Request-log retention: rows older than each workspace's `log_retention_days` go.

Rollups are kept (they are small and make up the usage history). On PostgreSQL the days
past every workspace's retention go as whole partitions; the rest (and everything on
SQLite) is deleted in bounded batches so no long lock is held. Several instances may prune
at once harmlessly.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Select, delete, select, text

from perpetuo.store.bulk import partitions
from perpetuo.store.database import Database
from perpetuo.store.schema import request_logs, workspaces
from perpetuo.store.timeutil import utcnow

log = logging.getLogger("perpetuo.retention")

DEFAULT_DAYS = 30  # control/workspaces.py WorkspaceSettings.log_retention_days default
BATCH = 5000


async def prune_request_logs(db: Database, now: dt.datetime | None = None) -> int:
    """Delete expired request-log rows; returns how many went."""
    now = now or utcnow()
    async with db.connect() as conn:
        rows = (await conn.execute(select(workspaces.c.id, workspaces.c.settings))).all()
    custom = {
        row.id: int(row.settings["log_retention_days"])
        for row in rows
        if isinstance(row.settings, dict) and row.settings.get("log_retention_days")
    }
    removed = 0
    if db.dialect == "postgresql":
        longest = max([DEFAULT_DAYS, *custom.values()])
        removed += await _drop_partitions(db, now - dt.timedelta(days=longest))
    for workspace_id, days in custom.items():
        removed += await _delete_older(db, now - dt.timedelta(days=days), workspace_id=workspace_id)
    removed += await _delete_older(db, now - dt.timedelta(days=DEFAULT_DAYS), exclude=set(custom))
    if removed:
        log.info("pruned %d request-log rows past retention", removed)
    return removed


async def _drop_partitions(db: Database, cutoff: dt.datetime) -> int:
    """Drop the days whose rows are all older than `cutoff`; returns the rows they held."""
    removed = 0
    async with db.begin() as conn:
        if not await conn.scalar(text(partitions.IS_PARTITIONED)):
            return 0
        names = (await conn.execute(text(partitions.LIST))).scalars().all()
    for name in names:
        day = partitions.day_of(name)
        if (
            day is None
            or dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(days=1) > cutoff
        ):
            continue
        async with db.begin() as conn:
            removed += int(await conn.scalar(text(f"SELECT count(*) FROM {name}")) or 0)  # noqa: S608
            await conn.execute(text(partitions.drop_sql(day)))
    return removed


def expired(
    cutoff: dt.datetime, *, workspace_id: str | None = None, exclude: set[str] | None = None
) -> Select:
    """The ids of rows older than `cutoff` (one workspace's, or all but `exclude`'s), read
    by the time index: an hourly pass with nothing to delete must not read the whole log."""
    victims = select(request_logs.c.id).where(request_logs.c.created_at < cutoff)
    if workspace_id is not None:
        victims = victims.where(request_logs.c.workspace_id == workspace_id)
    if exclude:
        victims = victims.where(request_logs.c.workspace_id.not_in(exclude))
    return victims


async def _delete_older(
    db: Database,
    cutoff: dt.datetime,
    *,
    workspace_id: str | None = None,
    exclude: set[str] | None = None,
) -> int:
    removed = 0
    victims = expired(cutoff, workspace_id=workspace_id, exclude=exclude)
    while True:
        async with db.begin() as conn:
            result = await conn.execute(
                delete(request_logs).where(
                    request_logs.c.id.in_(victims.limit(BATCH).scalar_subquery())
                )
            )
        count = result.rowcount or 0
        removed += count
        if count < BATCH:
            return removed
