"""Alerts: rules, channels (secrets sealed), each alert's state, the events sent and their
deliveries.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-15
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _workspace() -> sa.Column:
    return sa.Column(
        "workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE")
    )


def _created() -> sa.Column:
    return sa.Column("created_at", UTCDateTime, nullable=False)


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(40), primary_key=True),
        _workspace(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", JsonValue, nullable=False),
        sa.Column("channel_ids", JsonValue, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("for_minutes", sa.Integer, nullable=False),
        sa.Column("renotify_minutes", sa.Integer),
        sa.Column("created_by", sa.String(40)),
        _created(),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_alert_rules_workspace", "alert_rules", ["workspace_id"])
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.String(40), primary_key=True),
        _workspace(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settings", JsonValue, nullable=False),
        sa.Column("display", sa.String(300), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary),
        sa.Column("nonce", sa.LargeBinary),
        sa.Column("key_id", sa.String(40)),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(40)),
        _created(),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_alert_channels_workspace", "alert_channels", ["workspace_id"])
    op.create_table(
        "alert_states",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("rule_id", sa.String(40), nullable=False),
        _workspace(),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pending_since", UTCDateTime),
        sa.Column("last_true_at", UTCDateTime),
        sa.Column("fired_at", UTCDateTime),
        sa.Column("notified_at", UTCDateTime),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("resolve_at", UTCDateTime),
        sa.Column("value", sa.Float),
        sa.Column("summary", sa.String(500)),
        sa.Column("detail", JsonValue),
        _created(),
    )
    op.create_index(
        "uq_alert_states_rule_subject", "alert_states", ["rule_id", "subject"], unique=True
    )
    op.create_index("ix_alert_states_status", "alert_states", ["status"])
    op.create_table(
        "alert_events",
        sa.Column("id", sa.String(40), primary_key=True),
        _workspace(),
        sa.Column("rule_id", sa.String(40)),
        sa.Column("state_id", sa.String(40)),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("payload", JsonValue, nullable=False),
        _created(),
    )
    op.create_index(
        "ix_alert_events_workspace_time", "alert_events", ["workspace_id", "created_at"]
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("event_id", sa.String(40), nullable=False),
        _workspace(),
        sa.Column("channel_id", sa.String(40)),
        sa.Column("channel_kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("response_status", sa.Integer),
        sa.Column("last_error", sa.String(500)),
        _created(),
        sa.Column("delivered_at", UTCDateTime),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_alert_deliveries_event", "alert_deliveries", ["event_id"])


def downgrade() -> None:
    for table in (
        "alert_deliveries",
        "alert_events",
        "alert_states",
        "alert_channels",
        "alert_rules",
    ):
        op.drop_table(table)
