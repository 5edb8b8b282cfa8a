"""Chat sessions: conversations the gateway keeps for its clients, and their messages.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_id", sa.String(40)),
        sa.Column("user_id", sa.String(40)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("system_prompt", sa.Text),
        sa.Column("metadata", JsonValue, nullable=False),
        sa.Column("max_history_tokens", sa.Integer, nullable=False),
        sa.Column("summary_model", sa.String(200)),
        sa.Column("summary", sa.Text),
        sa.Column("summarized_through", sa.BigInteger),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_chat_sessions_workspace", "chat_sessions", ["workspace_id", "created_at"])
    op.create_index("ix_chat_sessions_expires", "chat_sessions", ["expires_at"])
    op.create_table(
        "chat_session_messages",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column(
            "session_id",
            sa.String(40),
            sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message", JsonValue, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_chat_session_messages_session", "chat_session_messages", ["session_id", "seq"]
    )


def downgrade() -> None:
    op.drop_table("chat_session_messages")
    op.drop_table("chat_sessions")
