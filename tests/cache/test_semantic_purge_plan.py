"""Every instance using the semantic cache purges expired entries once a minute: the purge
must find them by the expiry index, as each row carries its vector and answer and a scan
would read all of them."""

from __future__ import annotations

from perpetuo.cache.semantic import expired_entries
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from perpetuo.store.timeutil import utcnow
from tests.support.explain import query_plan


async def test_the_purge_of_expired_entries_reads_by_the_expiry_index(store_url):
    db = Database(store_url)
    try:
        await upgrade(db)
        async with db.connect() as conn:
            plan = await query_plan(conn, expired_entries(utcnow()))
        assert any("ix_semantic_cache_entries_expires" in line for line in plan), plan
    finally:
        await db.dispose()
