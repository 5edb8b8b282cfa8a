"""Usage: the request log, hourly usage rollups, and the credit ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LATENCY_COLUMNS = [f"lat_{i}" for i in range(15)]  # frozen here: migrations never change


def _big() -> sa.types.TypeEngine:
    return sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "request_logs",
        sa.Column("id", sa.String(64), primary_key=True),
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
        sa.Column("cost_micros", _big(), nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("cache", sa.String(16)),
        sa.Column("saved_cost_micros", _big(), nullable=False),
        sa.Column("client_ip", sa.String(64)),
        sa.Column("user_agent", sa.String(300)),
        sa.Column("tags", JsonValue),
        sa.Column("trace", JsonValue),
        sa.Column("detail", JsonValue),
    )
    op.create_index(
        "ix_request_logs_workspace_time", "request_logs", ["workspace_id", "created_at"]
    )
    op.create_index(
        "ix_request_logs_workspace_key_time",
        "request_logs",
        ["workspace_id", "key_id", "created_at"],
    )
    op.create_table(
        "usage_rollups",
        sa.Column("workspace_id", sa.String(40), primary_key=True),
        sa.Column("bucket", UTCDateTime, primary_key=True),
        sa.Column("dim", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", _big(), nullable=False),
        sa.Column("completion_tokens", _big(), nullable=False),
        sa.Column("cached_tokens", _big(), nullable=False),
        sa.Column("cost_micros", _big(), nullable=False),
        sa.Column("cache_hits", sa.Integer, nullable=False),
        sa.Column("saved_cost_micros", _big(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in LATENCY_COLUMNS),
    )
    op.create_table(
        "credit_ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_micros", _big(), nullable=False),
        sa.Column("note", sa.String(300)),
        sa.Column("actor_id", sa.String(40)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_credit_ledger_workspace", "credit_ledger", ["workspace_id", "created_at"])


def downgrade() -> None:
    op.drop_table("credit_ledger")
    op.drop_table("usage_rollups")
    op.drop_table("request_logs")
