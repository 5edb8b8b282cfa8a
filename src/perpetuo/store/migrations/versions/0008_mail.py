"""Mail: the outbox, single-use tokens mailed to people, and each person's verified address
and mail preferences.

Accounts that exist before this revision count as verified: turning verification on later
must not lock out the people already using the server.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("email_verified_at", UTCDateTime))
    op.add_column(
        "users",
        sa.Column("mail_opt_out", JsonValue, nullable=False, server_default=sa.text("'[]'")),
    )
    op.execute("UPDATE users SET email_verified_at = created_at")
    op.create_table(
        "user_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(40),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime),
    )
    op.create_index("ix_user_tokens_user", "user_tokens", ["user_id", "purpose"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("text_body", sa.Text, nullable=False),
        sa.Column("html_body", sa.Text, nullable=False),
        sa.Column("headers", JsonValue, nullable=False),
        sa.Column("workspace_id", sa.String(40)),
        sa.Column("user_id", sa.String(40)),
        sa.Column("dedupe_key", sa.String(200), unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("last_error", sa.String(500)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
    )
    op.create_index("ix_mail_outbox_due", "mail_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_mail_outbox_created", "mail_outbox", ["created_at"])


def downgrade() -> None:
    op.drop_table("mail_outbox")
    op.drop_table("user_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("mail_opt_out")
        batch.drop_column("email_verified_at")
