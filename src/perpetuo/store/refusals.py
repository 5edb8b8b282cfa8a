"""Telling a database that refuses the rows from a database that cannot be reached.

SQLSTATE classes 22 (data exception: a value too long, a NUL character, a number out of
range) and 23 (integrity constraint) are about the rows: writing them again cannot succeed.
Drivers wrap these differently (SQLite raises IntegrityError; asyncpg's errors reach
SQLAlchemy as a DBAPIError carrying the SQLSTATE), so the test looks at both.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

ROW_CLASSES = ("22", "23")


def sqlstate(exc: BaseException) -> str:
    return str(getattr(getattr(exc, "orig", None), "sqlstate", None) or "")


def refused_rows(exc: BaseException) -> bool:
    """True when the database refused the statement because of the values it carried."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    return isinstance(exc, DBAPIError) and sqlstate(exc).startswith(ROW_CLASSES)
