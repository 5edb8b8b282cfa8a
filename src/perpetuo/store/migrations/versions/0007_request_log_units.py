"""Request logs record work billed in other units than tokens (images, seconds of audio,
characters spoken, rerank searches): `unit` and `quantity`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On PostgreSQL the partitioned table passes new columns on to every partition.
    op.add_column("request_logs", sa.Column("unit", sa.String(16)))
    op.add_column(
        "request_logs",
        sa.Column("quantity", sa.Float, nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("quantity")
        batch.drop_column("unit")
