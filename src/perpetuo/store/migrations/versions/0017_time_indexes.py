"""Indexes for what runs on a timer and read whole tables:
- a platform alert rule on traffic asks the request log for the last few minutes of every
  workspace, once a minute: it read the whole log on SQLite and today's whole partition on
  PostgreSQL (35-40 ms over a day of 200,000 requests on SQLite, growing with the log);
- a platform spend rule asks the rollups for a few hour buckets of dimension "all": it read
  every rollup row;
- the hourly retention pass asks for rows past their retention: it read the whole log
  whenever few were left to delete (400-470 ms over a million rows on SQLite);
- the semantic cache's purge of expired entries, once a minute on every instance using it,
  read every entry, vectors and answers included.
These columns only grow with time, so a new row adds at the index's end: writing 200,000
request-log rows cost the same with the indexes as without (25-26 µs a row, SQLite).

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
    op.create_index("ix_semantic_cache_entries_expires", "semantic_cache_entries", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_semantic_cache_entries_expires", table_name="semantic_cache_entries")
    op.drop_index("ix_usage_rollups_dim_bucket", table_name="usage_rollups")
    op.drop_index("ix_request_logs_time", table_name="request_logs")
