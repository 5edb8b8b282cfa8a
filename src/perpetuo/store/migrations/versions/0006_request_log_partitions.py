"""Request logs partitioned by day on PostgreSQL (retention drops days instead of deleting
rows); the primary key becomes (id, created_at), as partitioning requires. SQLite keeps its
one table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen here, as migrations never change: the columns of 0002 and the partition naming.
COLUMNS = (
    "id, workspace_id, key_id, user_id, created_at, endpoint, alias, provider, model, "
    "strategy, attempts, fallback, stream, status, error_code, prompt_tokens, "
    "completion_tokens, cached_tokens, reasoning_tokens, usage_estimated, cost_micros, "
    "latency_ms, ttft_ms, cache, saved_cost_micros, client_ip, user_agent, tags, trace, detail"
)
INDEXES = {
    "ix_request_logs_workspace_time": ["workspace_id", "created_at"],
    "ix_request_logs_workspace_key_time": ["workspace_id", "key_id", "created_at"],
}


def _columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(40)),
        sa.Column("user_id", sa.String(40)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("endpoint", sa.String(40), nullable=False),
        sa.Column("alias", sa.String(200)),
        sa.Column("provider", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("strategy", sa.String(20)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("fallback", sa.Boolean, nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("cache", sa.String(16)),
        sa.Column("saved_cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("client_ip", sa.String(64)),
        sa.Column("user_agent", sa.String(300)),
        sa.Column("tags", JsonValue),
        sa.Column("trace", JsonValue),
        sa.Column("detail", JsonValue),
    ]


def _partition_sql(day: dt.date) -> str:
    end = day + dt.timedelta(days=1)
    return (
        f"CREATE TABLE request_logs_p{day:%Y%m%d} PARTITION OF request_logs "
        f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
    )


def _set_aside(old: str) -> None:
    """Rename the table, its primary key and its indexes: the new table takes their names."""
    bind = op.get_bind()
    op.execute(f"ALTER TABLE request_logs RENAME TO {old}")
    pk = bind.execute(
        sa.text(
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'p'"
        ),
        {"t": old},
    ).scalar_one()
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {pk} TO {old}_pkey")
    for name in INDEXES:
        op.execute(f"ALTER INDEX IF EXISTS {name} RENAME TO {name.replace('request_logs', old)}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside("request_logs_unpartitioned")
    op.create_table(
        "request_logs",
        *_columns(),
        sa.PrimaryKeyConstraint("id", "created_at", name="request_logs_pkey"),
        postgresql_partition_by="RANGE (created_at)",
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "request_logs", columns)
    days = op.get_bind().execute(
        sa.text(
            "SELECT DISTINCT CAST(created_at AT TIME ZONE 'UTC' AS date) "
            "FROM request_logs_unpartitioned"
        )
    )
    for (day,) in days.all():
        op.execute(_partition_sql(day))
    op.execute(
        f"INSERT INTO request_logs ({COLUMNS}) SELECT {COLUMNS} FROM request_logs_unpartitioned"  # noqa: S608
    )
    op.drop_table("request_logs_unpartitioned")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside("request_logs_partitioned")
    op.create_table(
        "request_logs", *_columns(), sa.PrimaryKeyConstraint("id", name="request_logs_pkey")
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "request_logs", columns)
    op.execute(
        f"INSERT INTO request_logs ({COLUMNS}) SELECT {COLUMNS} FROM request_logs_partitioned "  # noqa: S608
        "ON CONFLICT (id) DO NOTHING"
    )
    op.execute("DROP TABLE request_logs_partitioned")  # its partitions go with it
