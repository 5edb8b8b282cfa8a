"""Daily partitions of `request_logs` on PostgreSQL (declarative range partitioning).

Each UTC day is a table `request_logs_pYYYYMMDD`; the writer creates the partitions its rows
need (and tomorrow's, ahead of midnight), and retention drops whole days instead of deleting
rows. SQLite keeps one table and deletes.
"""

from __future__ import annotations

import datetime as dt

PARENT = "request_logs"
PREFIX = f"{PARENT}_p"

IS_PARTITIONED = "SELECT relkind = 'p' FROM pg_class WHERE relname = 'request_logs'"
LIST = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'request_logs'"
)


def name_for(day: dt.date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def day_of(name: str) -> dt.date | None:
    if not name.startswith(PREFIX):
        return None
    try:
        return dt.datetime.strptime(name[len(PREFIX) :], "%Y%m%d").date()
    except ValueError:
        return None


def create_sql(day: dt.date) -> str:
    """The day's partition, if it is not there yet (names and bounds come from a date)."""
    start, end = day, day + dt.timedelta(days=1)
    return (
        f"CREATE TABLE IF NOT EXISTS {name_for(day)} PARTITION OF {PARENT} "
        f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
    )


def drop_sql(day: dt.date) -> str:
    return f"DROP TABLE IF EXISTS {name_for(day)}"
