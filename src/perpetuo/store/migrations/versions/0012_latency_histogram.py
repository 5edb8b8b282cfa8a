"""Usage rollups: a latency histogram that resolves sub-millisecond answers (40 bounds from
0.1 ms to ten minutes instead of 14 from 10 ms), and each row's slowest request.

Every old bound is a new bound, so an old bucket is a run of new ones: its count moves to the
new bucket at its geometric middle (the old row never knew more), and the row's slowest
request is taken as the top of its highest non-empty old bucket, or the latency sum when that
is lower (no request took longer than all of them together). Downgrading adds the new buckets
back up into the old ones, exactly.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14
"""

import bisect
import math

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Both layouts frozen here (migrations never change); the last bucket of each is unbounded.
OLD = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 60_000, 120_000, 300_000)
NEW = (
    *(0.1, 0.15, 0.25, 0.35, 0.5, 0.75),
    *(1, 1.5, 2.5, 3.5, 5, 7.5),
    *(10, 15, 25, 35, 50, 75),
    *(100, 150, 250, 350, 500, 750),
    *(1000, 1500, 2500, 3500, 5000, 7500),
    *(10_000, 15_000, 25_000, 40_000),
    *(60_000, 90_000, 120_000, 180_000, 300_000, 600_000),
)
ADDED = [f"lat_{i}" for i in range(len(OLD) + 1, len(NEW) + 1)]


def _new_bucket(old: int) -> int:
    """The new bucket at the geometric middle of old bucket `old`."""
    lower = OLD[old - 1] if old else NEW[0]
    upper = OLD[old] if old < len(OLD) else 2 * OLD[-1]
    return bisect.bisect_left(NEW, math.sqrt(lower * upper))


def _old_bucket(new: int) -> int:
    """The old bucket holding new bucket `new` (each new one lies inside one old one)."""
    upper = NEW[new] if new < len(NEW) else math.inf
    return bisect.bisect_left(OLD, upper)


def _sum(indexes: list[int]) -> str:
    return " + ".join(f"lat_{i}" for i in indexes) if indexes else "0"


def upgrade() -> None:
    with op.batch_alter_table("usage_rollups") as batch:
        for name in ADDED:
            batch.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("latency_max_ms", sa.Float, nullable=False, server_default="0"))
    # Every SET expression reads the row as it was before the update (both databases).
    moved = [
        f"lat_{new} = {_sum([old for old in range(len(OLD) + 1) if _new_bucket(old) == new])}"
        for new in range(len(NEW) + 1)
    ]
    tops = " ".join(
        f"WHEN lat_{old} > 0 THEN "
        + (
            "latency_sum_ms"
            if old == len(OLD)
            else f"CASE WHEN latency_sum_ms < {OLD[old]} THEN latency_sum_ms ELSE {OLD[old]} END"
        )
        for old in range(len(OLD), -1, -1)
    )
    op.execute(
        f"UPDATE usage_rollups SET {', '.join(moved)}, "  # noqa: S608 (constants only)
        f"latency_max_ms = CASE {tops} ELSE 0 END"
    )


def downgrade() -> None:
    added_up = [
        f"lat_{old} = {_sum([new for new in range(len(NEW) + 1) if _old_bucket(new) == old])}"
        for old in range(len(OLD) + 1)
    ]
    op.execute(f"UPDATE usage_rollups SET {', '.join(added_up)}")  # noqa: S608 (constants only)
    with op.batch_alter_table("usage_rollups") as batch:
        batch.drop_column("latency_max_ms")
        for name in reversed(ADDED):
            batch.drop_column(name)
