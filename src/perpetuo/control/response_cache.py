"""Administering a workspace's response cache: statistics and purges (audited, and carried to
every instance through the change feed)."""

from __future__ import annotations

from typing import Any

from perpetuo.cache.service import ResponseCache
from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.changes import CACHE_PURGED
from perpetuo.control.plane import ControlPlane


async def cache_stats(
    plane: ControlPlane, cache: ResponseCache, actor: Actor, workspace_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "cache.read")
    return {
        "object": "cache_stats",
        "workspace_id": workspace_id,
        **await cache.stats(workspace_id),
    }


async def purge_cache(
    plane: ControlPlane,
    cache: ResponseCache,
    actor: Actor,
    workspace_id: str,
    alias: str | None,
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "cache.purge")
    removed = await cache.purge(workspace_id, alias)
    async with plane.db.begin() as conn:
        await audit.record(
            conn,
            actor,
            "cache.purge",
            workspace_id=workspace_id,
            target_type="cache",
            target_id=alias or "*",
            after={"alias": alias, "removed": removed},
        )
    await plane.changes.publish_remote(CACHE_PURGED, f"{workspace_id}/{alias or ''}")
    return {"object": "cache_purge", "workspace_id": workspace_id, "alias": alias, **removed}
