"""The database's plan for a statement, on SQLite and PostgreSQL, for tests that a periodic
query reads by index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable


class _Explain(Executable, ClauseElement):
    """`EXPLAIN <statement>` with the statement's own parameters, bound as it binds them."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(_Explain, "sqlite")
def _explain_sqlite(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN QUERY PLAN " + compiler.process(element.statement, **kw)


@compiles(_Explain, "postgresql")
def _explain_postgresql(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


async def query_plan(conn: Any, statement: ClauseElement) -> list[str]:
    """One line per plan step: SQLite's `detail` column, PostgreSQL's plan text. On
    PostgreSQL sequential scans are turned off for the connection first: a test's tables are
    nearly empty, and cheapest to scan; the question is whether an index *can* answer."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SET enable_seqscan = off"))
    return [str(row[-1]).strip() for row in await conn.execute(_Explain(statement))]
