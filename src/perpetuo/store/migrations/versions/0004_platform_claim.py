"""The platform claim: the first sign-up becomes platform administrator exactly once.

A single-row table whose primary key serializes concurrent first sign-ups on every engine.
A database that already has accounts is marked as claimed by its oldest one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_claim",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("claimed_at", UTCDateTime, nullable=False),
    )
    op.execute(
        "INSERT INTO platform_claim (id, user_id, claimed_at) "
        "SELECT 1, id, created_at FROM users ORDER BY created_at, id LIMIT 1"
    )


def downgrade() -> None:
    op.drop_table("platform_claim")
