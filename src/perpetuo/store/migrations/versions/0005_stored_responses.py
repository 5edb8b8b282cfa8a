"""Stored Responses API answers (previous_response_id, retrieval, input items).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_responses",
        sa.Column("scope", sa.String(40), primary_key=True),
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column(
            "workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE")
        ),
        sa.Column("key_id", sa.String(40)),
        sa.Column("previous_id", sa.String(80)),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("deployment", sa.String(400)),
        sa.Column("upstream_id", sa.String(200)),
        sa.Column("instructions", JsonValue),
        sa.Column("input_items", JsonValue, nullable=False),
        sa.Column("response", JsonValue, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_stored_responses_workspace", "stored_responses", ["workspace_id", "created_at"]
    )
    op.create_index("ix_stored_responses_expires", "stored_responses", ["expires_at"])


def downgrade() -> None:
    op.drop_table("stored_responses")
