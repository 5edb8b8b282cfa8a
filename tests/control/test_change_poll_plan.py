"""Every instance polls the database every two seconds for what changed: each of its
questions must be answered by an index, or its cost grows with the tables (the audit trail
only grows: a million entries made a poll read all of them, 150 ms on SQLite)."""

from __future__ import annotations

import datetime as dt

from perpetuo.control.changes import announced_since, changed_since
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import api_keys, workspaces
from perpetuo.store.timeutil import utcnow
from tests.support.explain import query_plan


async def test_each_question_of_the_change_poll_is_answered_by_an_index(store_url):
    db = Database(store_url)
    try:
        await upgrade(db)
        since = utcnow() - dt.timedelta(seconds=10)
        questions = {
            "ix_api_keys_updated": changed_since(api_keys, since),
            "ix_workspaces_updated": changed_since(workspaces, since),
            "ix_audit_log_action_time": announced_since(since),
        }
        async with db.connect() as conn:
            for index, question in questions.items():
                plan = await query_plan(conn, question)
                assert any(index in line for line in plan), plan
    finally:
        await db.dispose()
