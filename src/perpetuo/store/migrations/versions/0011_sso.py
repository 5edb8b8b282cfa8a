"""Single sign-on: workspaces' identity providers, verified e-mail domains, linked provider
identities, sign-ins in flight, and the provider each session came from.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-13
"""

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_providers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("token_auth_method", sa.String(32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("scopes", JsonValue, nullable=False),
        sa.Column("domains", JsonValue, nullable=False),
        sa.Column("groups_claim", sa.String(200), nullable=False),
        sa.Column("role_mapping", JsonValue, nullable=False),
        sa.Column("default_role", sa.String(64), nullable=False),
        sa.Column("unmapped_groups", sa.String(16), nullable=False),
        sa.Column("jit", sa.Boolean, nullable=False),
        sa.Column("sso_required", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(40), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_sso_providers_workspace", "sso_providers", ["workspace_id"])
    op.create_table(
        "sso_domains",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("verified_by", sa.String(40), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("verified_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_sso_domains_workspace", "sso_domains", ["workspace_id"])
    op.create_table(
        "sso_identities",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(40),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("provider_key", sa.String(80), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_login_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "uq_sso_identities_subject", "sso_identities", ["provider_key", "subject"], unique=True
    )
    op.create_index("ix_sso_identities_user", "sso_identities", ["user_id"])
    op.create_table(
        "sso_requests",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("provider_key", sa.String(80), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("next_path", sa.String(500)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime),
    )
    op.create_index("ix_sso_requests_expires", "sso_requests", ["expires_at"])
    op.create_table(
        "sso_sessions",
        sa.Column(
            "session_id",
            sa.String(40),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("provider_key", sa.String(80), nullable=False),
        sa.Column("id_token", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sso_sessions")
    op.drop_table("sso_requests")
    op.drop_table("sso_identities")
    op.drop_table("sso_domains")
    op.drop_table("sso_providers")
