"""Initial control-plane schema: users, workspaces, memberships, invites, sessions, API keys,
provider credentials, workspace models, and the append-only audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

from perpetuo.store.schema import JsonValue, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DEFAULT_WORKSPACE_ID = "ws_default"


def _created() -> sa.Column:
    return sa.Column("created_at", UTCDateTime, nullable=False)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_superadmin", sa.Boolean, nullable=False),
        _created(),
        sa.Column("disabled_at", UTCDateTime),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("settings", JsonValue, nullable=False),
        _created(),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("routing_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_workspaces_updated", "workspaces", ["updated_at"])
    op.create_table(
        "memberships",
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey(
                "workspaces.id", ondelete="CASCADE", name="fk_memberships_workspace_id_workspaces"
            ),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.String(40),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_memberships_user_id_users"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(16), nullable=False),
        _created(),
    )
    op.create_index("ix_memberships_user", "memberships", ["user_id"])
    op.create_table(
        "invites",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey(
                "workspaces.id", ondelete="CASCADE", name="fk_invites_workspace_id_workspaces"
            ),
            nullable=False,
        ),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column(
            "created_by",
            sa.String(40),
            sa.ForeignKey("users.id", ondelete="SET NULL", name="fk_invites_created_by_users"),
        ),
        _created(),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("accepted_at", UTCDateTime),
        sa.Column("revoked_at", UTCDateTime),
        sa.UniqueConstraint("token_hash", name="uq_invites_token_hash"),
    )
    op.create_index("ix_invites_workspace", "invites", ["workspace_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(40),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_sessions_user_id_users"),
            nullable=False,
        ),
        sa.Column("refresh_hash", sa.String(64), nullable=False),
        _created(),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.String(300)),
        sa.UniqueConstraint("refresh_hash", name="uq_sessions_refresh_hash"),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey(
                "workspaces.id", ondelete="CASCADE", name="fk_api_keys_workspace_id_workspaces"
            ),
            nullable=False,
        ),
        sa.Column(
            "owner_id",
            sa.String(40),
            sa.ForeignKey("users.id", ondelete="SET NULL", name="fk_api_keys_owner_id_users"),
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(8), nullable=False),
        sa.Column("prefix", sa.String(24), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("previous_hash", sa.String(64)),
        sa.Column("previous_valid_until", UTCDateTime),
        sa.Column("scopes", JsonValue, nullable=False),
        sa.Column("allowed_models", JsonValue),
        sa.Column("ip_allowlist", JsonValue),
        sa.Column("referer_domains", JsonValue),
        sa.Column("metadata", JsonValue, nullable=False),
        sa.Column("limits", JsonValue, nullable=False),
        _created(),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime),
        sa.Column("revoked_at", UTCDateTime),
        sa.Column("last_used_at", UTCDateTime),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sa.UniqueConstraint("previous_hash", name="uq_api_keys_previous_hash"),
    )
    op.create_index("ix_api_keys_workspace", "api_keys", ["workspace_id"])
    op.create_index("ix_api_keys_updated", "api_keys", ["updated_at"])
    op.create_table(
        "provider_credentials",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey(
                "workspaces.id",
                ondelete="CASCADE",
                name="fk_provider_credentials_workspace_id_workspaces",
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("provider_type", sa.String(40), nullable=False),
        sa.Column("api_base", sa.String(500)),
        sa.Column("api_version", sa.String(40)),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column(
            "created_by",
            sa.String(40),
            sa.ForeignKey(
                "users.id", ondelete="SET NULL", name="fk_provider_credentials_created_by_users"
            ),
        ),
        _created(),
    )
    op.create_index("ix_provider_credentials_workspace", "provider_credentials", ["workspace_id"])
    op.create_table(
        "workspace_models",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey(
                "workspaces.id",
                ondelete="CASCADE",
                name="fk_workspace_models_workspace_id_workspaces",
            ),
            nullable=False,
        ),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("spec", JsonValue, nullable=False),
        _created(),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "uq_workspace_models_alias", "workspace_models", ["workspace_id", "alias"], unique=True
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("workspace_id", sa.String(40)),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(40)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(40), nullable=False),
        sa.Column("target_id", sa.String(64)),
        sa.Column("before", JsonValue),
        sa.Column("after", JsonValue),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.String(300)),
        _created(),
    )
    op.create_index("ix_audit_log_workspace_time", "audit_log", ["workspace_id", "created_at"])
    _append_only("audit_log")

    workspaces = sa.table(
        "workspaces",
        sa.column("id"),
        sa.column("name"),
        sa.column("settings", JsonValue),
        sa.column("created_at", UTCDateTime),
        sa.column("updated_at", UTCDateTime),
        sa.column("routing_version"),
    )
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        workspaces,
        [
            {
                "id": DEFAULT_WORKSPACE_ID,
                "name": "Default",
                "settings": {},
                "created_at": now,
                "updated_at": now,
                "routing_version": 0,
            }
        ],
    )


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE at the database itself, so no code path can rewrite history."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{table} is append-only'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def downgrade() -> None:
    for name in (
        "audit_log",
        "workspace_models",
        "provider_credentials",
        "api_keys",
        "sessions",
        "invites",
        "memberships",
        "workspaces",
        "users",
    ):
        op.drop_table(name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
