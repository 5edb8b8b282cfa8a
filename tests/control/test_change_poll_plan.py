"""Every instance polls the database every two seconds for what changed: each of its
questions must be answered by an index, or its cost grows with the tables (the audit trail
only grows: a million entries made a poll read all of them, 150 ms on SQLite)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from perpetuo.control.changes import announced_since, changed_since
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import api_keys, workspaces
from perpetuo.store.timeutil import utcnow


class _Explain(Executable, ClauseElement):
    """`EXPLAIN <statement>` with the statement's own parameters, bound as it binds them."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(_Explain, "sqlite")
def _explain_sqlite(element: _Explain, compiler, **kw) -> str:
    return "EXPLAIN QUERY PLAN " + compiler.process(element.statement, **kw)


@compiles(_Explain, "postgresql")
def _explain_postgresql(element: _Explain, compiler, **kw) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


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
            if not db.is_sqlite:
                # Empty tables are cheapest to scan: ask whether an index *can* answer.
                await conn.execute(text("SET enable_seqscan = off"))
            for index, question in questions.items():
                plan = " ".join(str(row) for row in await conn.execute(_Explain(question)))
                assert index in plan, plan
    finally:
        await db.dispose()
