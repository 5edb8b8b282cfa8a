"""Table definitions. Every tenant-owned row carries `workspace_id`.

Migrations in store/migrations/ create these tables; a test checks that the two agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class _JsonValue(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL. A type of our own rather than `with_variant`, which
    needs PostgreSQL's dialect imported by every gateway (~40 ms of start-up on SQLite)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


JsonValue = _JsonValue()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(
        self, value: dt.datetime | None, dialect: object
    ) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


def created_column() -> Column[dt.datetime]:
    """`created_at`, as every table that records when a row was made has it."""
    return Column("created_at", UTCDateTime, nullable=False)


users = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("password_hash", String(255), nullable=False),
    Column("is_superadmin", Boolean, nullable=False, default=False),
    created_column(),
    Column("disabled_at", UTCDateTime),
    Column("email_verified_at", UTCDateTime),  # null: the address was never confirmed
    # Kinds of non-transactional mail this person turned off (control/mail/catalog.py).
    Column("mail_opt_out", JsonValue, nullable=False, default=list),
)

# One row at most, ever: inserting it is how the first sign-up claims the platform (becomes
# its administrator). The primary key makes the claim atomic on every engine.
platform_claim = Table(
    "platform_claim",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("user_id", String(40), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("settings", JsonValue, nullable=False, default=dict),
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    # Bumped whenever the workspace's credentials or models change: instances rebuild routing.
    Column("routing_version", Integer, nullable=False, default=0),
    Index("ix_workspaces_updated", "updated_at"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),
    created_column(),
    # The member's team (control/teams.py), cleared when the team is deleted.
    Column("team_id", String(40)),
    # The member's own limits (rpm, budgets...), laid over the workspace's `user_limits`.
    Column("limits", JsonValue),
    Index("ix_memberships_user", "user_id"),
    Index("ix_memberships_team", "team_id"),
)

# Teams (departments) of a workspace: members and keys belong to at most one; the team's
# limits sit between the workspace's and each user's (limits/planning.py).
teams = Table(
    "teams",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", String(500), nullable=False, default=""),
    Column("limits", JsonValue, nullable=False, default=dict),  # rpm, tpm, budgets...
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("uq_teams_name", "workspace_id", "name", unique=True),
)

invites = Table(
    "invites",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", ForeignKey("users.id", ondelete="SET NULL")),
    created_column(),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("accepted_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Index("ix_invites_workspace", "workspace_id"),
)

# Single-use tokens mailed to people (e-mail verification, password reset): only the hash.
user_tokens = Table(
    "user_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(24), nullable=False),  # verify_email | password_reset
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("email", String(320), nullable=False),  # the address it was sent to
    created_column(),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Index("ix_user_tokens_user", "user_id", "purpose"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("refresh_hash", String(64), nullable=False, unique=True),
    created_column(),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("ip", String(64)),
    Column("user_agent", String(300)),
    Index("ix_sessions_user", "user_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", ForeignKey("users.id", ondelete="SET NULL")),
    Column("name", String(200), nullable=False),
    Column("environment", String(8), nullable=False),  # live | test
    Column("prefix", String(24), nullable=False),  # shown to people: pk_live_AbCd
    Column("last4", String(4), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    # During a rotation's grace period the previous secret still works.
    Column("previous_hash", String(64), unique=True),
    Column("previous_valid_until", UTCDateTime),
    Column("scopes", JsonValue, nullable=False),
    Column("allowed_models", JsonValue),  # null: every alias
    Column("ip_allowlist", JsonValue),  # null: any address
    Column("referer_domains", JsonValue),  # null: any referer
    Column("metadata", JsonValue, nullable=False, default=dict),
    Column("limits", JsonValue, nullable=False, default=dict),  # rpm, tpm, budgets...
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
    # The key's own team; a key without one counts to its owner's team (control/teams.py).
    Column("team_id", String(40)),
    Index("ix_api_keys_workspace", "workspace_id"),
    Index("ix_api_keys_team", "team_id"),
    Index("ix_api_keys_updated", "updated_at"),
)

provider_credentials = Table(
    "provider_credentials",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("provider_type", String(40), nullable=False),
    Column("api_base", String(500)),
    Column("api_version", String(40)),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("key_id", String(40), nullable=False),  # which encryption key sealed it
    Column("last4", String(4), nullable=False),
    Column("created_by", ForeignKey("users.id", ondelete="SET NULL")),
    created_column(),
    Index("ix_provider_credentials_workspace", "workspace_id"),
)

workspace_models = Table(
    "workspace_models",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("alias", String(200), nullable=False),
    # The alias as in the config file's `models:` entry; deployments name credentials.
    Column("spec", JsonValue, nullable=False),
    created_column(),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("uq_workspace_models_alias", "workspace_id", "alias", unique=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("workspace_id", String(40)),  # null for platform-level actions
    Column("actor_type", String(16), nullable=False),  # user | master | cli | system
    Column("actor_id", String(40)),
    Column("action", String(64), nullable=False),
    Column("target_type", String(40), nullable=False),
    Column("target_id", String(64)),
    Column("before", JsonValue),
    Column("after", JsonValue),
    Column("ip", String(64)),
    Column("user_agent", String(300)),
    created_column(),
    Index("ix_audit_log_workspace_time", "workspace_id", "created_at"),
    Index("ix_audit_log_action_time", "action", "created_at"),  # the change poll's question
)


# -- usage: one row per request, hourly rollups, the credit ledger -------------------------------

# Upper bounds (ms) of the latency histogram kept in rollups: about 1.5 times apart from
# 0.1 ms to ten minutes, so a percentile reads sub-millisecond answers and slow streams alike;
# the last bucket is unbounded. Every bound of the first layout (10, 25, 50, ..., 300,000 ms)
# is among them, which is how migration 0012 carried older rows over.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    *(0.1, 0.15, 0.25, 0.35, 0.5, 0.75),
    *(1, 1.5, 2.5, 3.5, 5, 7.5),
    *(10, 15, 25, 35, 50, 75),
    *(100, 150, 250, 350, 500, 750),
    *(1000, 1500, 2500, 3500, 5000, 7500),
    *(10_000, 15_000, 25_000, 40_000),
    *(60_000, 90_000, 120_000, 180_000, 300_000, 600_000),
)
LATENCY_COLUMNS = tuple(f"lat_{i}" for i in range(len(LATENCY_BUCKETS_MS) + 1))

# On PostgreSQL partitioned by day (store/bulk/partitions.py) with the primary key
# (id, created_at), as partitioning requires: a record keeps its created_at when replayed.
# Migration 0006 declares the partitioning (`PARTITION BY RANGE (created_at)`); it is not
# repeated here as `postgresql_partition_by`, a keyword that makes SQLAlchemy import
# PostgreSQL's dialect in every gateway, SQLite ones included (~40 ms of start-up).
request_logs = Table(
    "request_logs",
    metadata,
    Column("id", String(64), primary_key=True),  # the request id
    Column("workspace_id", String(40), nullable=False),
    Column("key_id", String(40)),
    Column("user_id", String(40)),
    created_column(),
    Column("endpoint", String(40), nullable=False),
    Column("alias", String(200)),
    Column("provider", String(200)),
    Column("model", String(200)),
    Column("strategy", String(20)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("fallback", Boolean, nullable=False, default=False),
    Column("stream", Boolean, nullable=False, default=False),
    Column("status", Integer, nullable=False),
    Column("error_code", String(64)),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("usage_estimated", Boolean, nullable=False, default=False),
    Column("cost_micros", BigInteger, nullable=False, default=0),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("cache", String(16)),  # hit | semantic-hit | miss | null (not cacheable)
    Column("saved_cost_micros", BigInteger, nullable=False, default=0),
    Column("client_ip", String(64)),
    Column("user_agent", String(300)),
    Column("tags", JsonValue),
    Column("trace", JsonValue),  # the routing decision trace
    Column("detail", JsonValue),  # optional: redacted bodies, guardrail findings
    # Work billed in another unit than tokens: images, seconds, characters, searches.
    Column("unit", String(16)),
    Column("quantity", Float, nullable=False, default=0.0),
    Column("team_id", String(40)),  # the team the request counted to
    Index("ix_request_logs_workspace_time", "workspace_id", "created_at"),
    Index("ix_request_logs_workspace_key_time", "workspace_id", "key_id", "created_at"),
    Index("ix_request_logs_time", "created_at"),  # platform-wide windows (alert rules)
)

usage_rollups = Table(
    "usage_rollups",
    metadata,
    Column("workspace_id", String(40), primary_key=True),
    Column("bucket", UTCDateTime, primary_key=True),  # the hour
    # all | endpoint | alias | provider | model | key | user | team | tag (metering/rollup.py)
    Column("dim", String(16), primary_key=True),
    Column("value", String(200), primary_key=True),
    Column("requests", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    Column("prompt_tokens", BigInteger, nullable=False, default=0),
    Column("completion_tokens", BigInteger, nullable=False, default=0),
    Column("cached_tokens", BigInteger, nullable=False, default=0),
    Column("cost_micros", BigInteger, nullable=False, default=0),
    Column("cache_hits", Integer, nullable=False, default=0),
    Column("saved_cost_micros", BigInteger, nullable=False, default=0),
    Column("latency_sum_ms", Float, nullable=False, default=0.0),
    *(Column(name, Integer, nullable=False, default=0) for name in LATENCY_COLUMNS),
    # The slowest request of the row (0: not known), so no percentile is read above it.
    Column("latency_max_ms", Float, nullable=False, default=0.0),
    Index("ix_usage_rollups_dim_bucket", "dim", "bucket"),  # platform-wide hours
)

credit_ledger = Table(
    "credit_ledger",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("workspace_id", String(40), nullable=False),
    # grant | usage | adjustment, and from billing: purchase | plan | refund | dispute | trial
    # | coupon | referral | expiry
    Column("kind", String(16), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),  # + adds credit, - spends it
    Column("note", String(300)),
    Column("actor_id", String(40)),
    # What caused a billing entry (a Stripe PaymentIntent or event id, a coupon, a trial):
    # unique, so the same cause can never move the balance twice.
    Column("reference", String(120), unique=True),
    created_column(),
    Index("ix_credit_ledger_workspace", "workspace_id", "created_at"),
)

# Mail waiting to be sent, being sent, sent or given up on (control/mail/outbox.py). Rows are
# claimed by a conditional update, so two instances never send the same row; bodies are
# erased once sent (they may carry single-use links).
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("template", String(64), nullable=False),
    Column("to_address", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("text_body", Text, nullable=False),
    Column("html_body", Text, nullable=False),
    Column("headers", JsonValue, nullable=False, default=dict),  # List-Unsubscribe, ...
    Column("workspace_id", String(40)),
    Column("user_id", String(40)),
    # One mail per event even when several instances notice it (key expiry, alerts).
    Column("dedupe_key", String(200), unique=True),
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(64)),
    Column("lease_until", UTCDateTime),
    Column("last_error", String(500)),
    created_column(),
    Column("sent_at", UTCDateTime),
    Index("ix_mail_outbox_due", "status", "next_attempt_at"),
    Index("ix_mail_outbox_created", "created_at"),
)

# Tables of other concerns live in their own modules, on this metadata (imported last: they
# need it).
from perpetuo.store import (  # noqa: E402, F401
    alert_tables,
    billing_tables,
    conversation_tables,
    role_tables,
    sso_tables,
)
