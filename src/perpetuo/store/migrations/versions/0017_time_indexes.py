"""Platform alert rules read by index: a platform traffic rule asks the request log for the
last few minutes of every workspace, and a platform spend rule asks the rollups for a few hour
buckets of dimension "all", once a minute. With no index to use, each read the whole request
log (on SQLite; today's partition on PostgreSQL) or every rollup row: 35-40 ms over a day of
200,000 requests, growing with the log. The hourly retention pass's question, rows past
their retention, read the whole log too whenever few were left to delete. Both columns only
grow with time, so each new row adds at the index's end: writing 200,000 rows cost the same
with the index as without (25-26 µs a row, SQLite, in process).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_request_logs_time", "request_logs", ["created_at"])
    op.create_index("ix_usage_rollups_dim_bucket", "usage_rollups", ["dim", "bucket"])


def downgrade() -> None:
    op.drop_index("ix_usage_rollups_dim_bucket", table_name="usage_rollups")
    op.drop_index("ix_request_logs_time", table_name="request_logs")
